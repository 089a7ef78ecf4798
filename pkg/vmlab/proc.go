package vmlab

import (
	"context"
	"sync"
)

// Proc is a long-running command in the VM (a daemon under test, a real
// server), started with [VM.Start]. Its output is returned when it ends.
type Proc struct {
	vm     *VM
	argv   []string
	cancel context.CancelFunc
	done   chan struct{}

	once sync.Once
	res  *Result
	err  error
}

// Start runs c in the background. The process group is killed by
// [Proc.Stop] or when the VM closes.
func (vm *VM) Start(c Cmd) *Proc {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proc{vm: vm, argv: c.Argv, cancel: cancel, done: make(chan struct{})}
	vm.mu.Lock()
	vm.procs[p] = true
	vm.mu.Unlock()
	go func() {
		defer close(p.done)
		p.res, p.err = vm.Exec(ctx, c)
		if p.res != nil && ctx.Err() != nil {
			p.err = nil // stopped on purpose: the output is the point
		}
	}()
	return p
}

// Wait waits for the command to exit on its own, or for ctx.
func (p *Proc) Wait(ctx context.Context) (*Result, error) {
	select {
	case <-p.done:
		p.forget()
		return p.res, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Exited reports whether the command has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop kills the command's process group, if it still runs, waits for it
// and returns what it wrote (nil when the VM is gone).
func (p *Proc) Stop() *Result {
	p.cancel()
	<-p.done
	p.forget()
	return p.res
}

func (p *Proc) forget() {
	p.once.Do(func() {
		p.vm.mu.Lock()
		delete(p.vm.procs, p)
		p.vm.mu.Unlock()
	})
}
