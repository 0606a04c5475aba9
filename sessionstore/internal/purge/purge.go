// Package purge runs the periodic clean-up of the single-node backends
// (memory, sqlite). Their queries ignore expired entries anyway; the purge
// only gives the memory or the disk space back.
package purge

import "time"

// Loop calls a purge function at a fixed interval until Stop.
type Loop struct {
	stop chan struct{}
	done chan struct{}
}

// Start calls purge every interval, with the time of the tick, until Stop.
// A purge that fails is the caller's to ignore: the next tick tries again.
func Start(every time.Duration, purge func(now time.Time)) *Loop {
	l := &Loop{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case now := <-t.C:
				purge(now)
			}
		}
	}()
	return l
}

// Stop ends the loop and waits for a purge under way to finish. Call it
// once.
func (l *Loop) Stop() {
	close(l.stop)
	<-l.done
}
