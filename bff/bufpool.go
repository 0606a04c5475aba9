package bff

import "sync"

// proxyBuffers lends ReverseProxy its copy buffers. Without a pool it
// allocates a fresh 32 KB buffer for every proxied response, which was most
// of the bytes the hot path allocated and a large part of its GC work.
type proxyBuffers struct{ pool sync.Pool }

const proxyBufferSize = 32 << 10

func newProxyBuffers() *proxyBuffers {
	return &proxyBuffers{pool: sync.Pool{New: func() any {
		b := make([]byte, proxyBufferSize)
		return &b
	}}}
}

func (p *proxyBuffers) Get() []byte { return *p.pool.Get().(*[]byte) }

func (p *proxyBuffers) Put(b []byte) {
	if cap(b) != proxyBufferSize {
		return // not one of ours
	}
	b = b[:proxyBufferSize]
	p.pool.Put(&b)
}
