// The helpers an SPA copies to talk to the BFF: import from here.
export * from './bff';
export * from './session';
