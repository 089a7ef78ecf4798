// Package notify does what keepalived does when a VRRP instance or a sync
// group changes state (keepalived 2.2.7 vrrp/vrrp_notify.c): it runs the
// notify_* scripts and the generic `notify` script, writes notify_fifo /
// vrrp_notify_fifo lines and sends smtp_alert mail. It is driven by
// vrrpd's event stream and runs in the supervisor.
//
// Where keepalived forks every script and forgets it, vrrpkit runs one
// instance's (or group's) scripts one after the other in event order, so a
// notify_backup never overtakes the notify_master before it; different
// instances run in parallel. Each script has a timeout (ScriptTimeout,
// keepalived has none) so a hanging script delays only its own instance,
// and each queue is bounded (QueueLimit).
package notify

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/config"
	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Runner runs one script to completion; *scriptrun.Runner is one. Run
// must return soon after ctx is done (killing the script): notify relies
// on it to stop the notify_fifo_script reader and to give up on Close.
type Runner interface {
	Run(context.Context, scriptrun.Command) scriptrun.Result
}

// Defaults for Options.
const (
	// DefaultScriptTimeout bounds one notify script. keepalived has no
	// notify timeout because it never waits for a notify script; vrrpkit
	// waits to keep order, so a hang must end. 30 s leaves room for the
	// usual "systemctl restart haproxy" while bounding how long a hung
	// script delays its instance's next notification.
	DefaultScriptTimeout = 30 * time.Second
	// StopScriptTimeout is keepalived's kill timer for STOP notifies
	// (TIMER_HZ in send_instance_notifies / notify_script_exec).
	StopScriptTimeout = time.Second
	// DefaultQueueLimit is how many transitions may wait per instance:
	// far more than a flapping instance produces while one script runs.
	DefaultQueueLimit = 256
	// DefaultMailQueue is how many mails may wait for the SMTP server.
	DefaultMailQueue = 64
)

// Options configure a Dispatcher. Zero values take the defaults.
type Options struct {
	Log    *slog.Logger
	Runner Runner
	// Now stamps mails (their Date header); time.Now by default.
	Now           func() time.Time
	ScriptTimeout time.Duration
	QueueLimit    int
	MailQueue     int
	// Hostname is keepalived's local_name; os.Hostname by default.
	Hostname string
	// Dial connects to the SMTP server; a net.Dialer by default.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Dispatcher turns vrrpd events into notifications. Its methods are safe
// for concurrent use; Event never blocks on I/O.
type Dispatcher struct {
	opts Options
	log  *slog.Logger

	ctx    context.Context // scripts and mail; cancelled by Close at its deadline
	cancel context.CancelFunc
	q      *queues
	mail   *mailer
	mailWG sync.WaitGroup

	mu     sync.Mutex
	eng    *engine
	fifos  []*fifo
	closed bool
}

// New returns a Dispatcher with an empty configuration; call Apply.
func New(opts Options) *Dispatcher {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ScriptTimeout <= 0 {
		opts.ScriptTimeout = DefaultScriptTimeout
	}
	if opts.QueueLimit <= 0 {
		opts.QueueLimit = DefaultQueueLimit
	}
	if opts.MailQueue <= 0 {
		opts.MailQueue = DefaultMailQueue
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
	}
	if opts.Dial == nil {
		var d net.Dialer
		opts.Dial = d.DialContext
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{
		opts:   opts,
		log:    opts.Log,
		ctx:    ctx,
		cancel: cancel,
		q:      newQueues(ctx, opts.Log, opts.QueueLimit),
		mail:   &mailer{log: opts.Log, queue: make(chan outMail, opts.MailQueue), dial: opts.Dial},
		eng:    newEngine(),
	}
	d.mailWG.Add(1)
	go func() {
		defer d.mailWG.Done()
		d.mail.run(ctx)
	}()
	return d
}

// Apply installs configuration generation gen. Call it before the
// generation is pushed to vrrpd, so that transitions of new instances
// find their scripts. Instances that are gone announce their removal as
// keepalived's reload does (DELETED with notify_deleted, else FAULT).
// FIFOs that changed are reopened; an unchanged one stays open, and its
// reader script is restarted if it had exited. The returned error lists
// FIFOs that could not be opened; the rest of the plan is in force.
func (d *Dispatcher) Apply(cfg *config.Config, gen uint64) error {
	plan := NewPlan(cfg, gen, d.opts.Hostname)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("notify: Apply after Close")
	}
	acts := d.eng.apply(plan)
	for _, a := range acts {
		d.do(a)
	}
	return d.applyFIFOs(plan.FIFOs)
}

func (d *Dispatcher) applyFIFOs(want []FIFOPlan) error {
	var errs []error
	var keep []*fifo
	for _, f := range d.fifos {
		still := false
		for _, w := range want {
			if sameFIFO(f.plan, w) {
				still = true
			}
		}
		if still {
			keep = append(keep, f)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := f.close(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	var next []*fifo
	for _, w := range want {
		var have *fifo
		for _, f := range keep {
			if sameFIFO(f.plan, w) {
				have = f
			}
		}
		if have == nil {
			f, err := openFIFO(w)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			f.startReader(d.log, d.opts.Runner, d.eng.plan.Security)
			have = f
		} else if have.plan.Script != nil && have.readerExited() {
			have.startReader(d.log, d.opts.Runner, d.eng.plan.Security)
		}
		next = append(next, have)
	}
	d.fifos = next
	return errors.Join(errs...)
}

// Event takes one message of vrrpd's event stream. It never blocks: FIFO
// writes are non-blocking, scripts and mail are queued. A snapshot (the
// first message of every stream) only updates what notify knows, so a
// reconnect re-runs nothing; transitions from INIT (an instance starting
// in BACKUP) notify as keepalived's vrrp_init_state does.
func (d *Dispatcher) Event(ev *pb.VrrpEvent) {
	if ev == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	switch e := ev.GetEvent().(type) {
	case *pb.VrrpEvent_Snapshot:
		d.eng.snapshot(e.Snapshot)
	case *pb.VrrpEvent_Transition:
		for _, a := range d.eng.transition(e.Transition) {
			d.do(a)
		}
	case *pb.VrrpEvent_LowerPriorityMaster:
		if a, ok := d.eng.masterRxLowerPri(e.LowerPriorityMaster.GetInstance(), e.LowerPriorityMaster.GetPriority()); ok {
			d.do(a)
		}
	}
}

// MasterRxLowerPri reports that instance, as master, received an advert
// with a lower priority (keepalived's VRRP_EVENT_MASTER_RX_LOWER_PRI): it
// runs notify_master_rx_lower_pri and writes the FIFO line. Event does the
// same for vrrpd's LowerPriorityMaster events.
func (d *Dispatcher) MasterRxLowerPri(instance string, priority uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	if a, ok := d.eng.masterRxLowerPri(instance, priority); ok {
		d.do(a)
	}
}

// do carries out one Action; d.mu is held.
func (d *Dispatcher) do(a Action) {
	d.log.Info("notify", "kind", string(a.Kind), "name", a.Name, "state", a.State.Word(), "priority", a.Priority, "scripts", len(a.Scripts))
	if len(a.Scripts) > 0 {
		cmds := make([]scriptrun.Command, 0, len(a.Scripts))
		for _, s := range a.Scripts {
			t := d.opts.ScriptTimeout
			if s.Stop {
				t = StopScriptTimeout
			}
			cmds = append(cmds, scriptrun.Command{
				Name:     s.Keyword + " " + a.Name,
				Args:     s.Args(),
				User:     s.Script.User,
				Group:    s.Script.Group,
				Timeout:  t,
				Security: d.eng.plan.Security,
			})
		}
		runner, log := d.opts.Runner, d.log
		d.q.push(a.Key(), func(ctx context.Context) {
			for _, c := range cmds {
				if ctx.Err() != nil {
					return
				}
				res := runner.Run(ctx, c)
				switch {
				case res.Err != nil:
					log.Warn("notify script failed to start", "script", c.Name, "error", res.Err)
				case res.TimedOut:
					log.Warn("notify script timed out and was killed", "script", c.Name, "timeout", c.Timeout)
				case res.ExitStatus != 0:
					log.Info("notify script exited non-zero", "script", c.Name, "exit_status", res.ExitStatus, "signal", int(res.Signal))
				}
			}
		})
	}
	for _, f := range d.fifos {
		if err := f.write(a.FIFOLine); err != nil {
			d.log.Debug("notify fifo write failed", "fifo", f.plan.Path, "error", err)
		}
	}
	if a.Mail != nil && d.eng.plan.Mail != nil {
		d.mail.enqueue(outMail{plan: d.eng.plan.Mail, mail: *a.Mail, at: d.opts.Now()})
	}
}

// Close stops taking events, waits for queued scripts and mail within
// ctx, then stops the FIFO readers and closes the FIFOs. At ctx's end it
// cancels what still runs and returns ctx's error.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	fifos := d.fifos
	d.fifos = nil
	d.mu.Unlock()

	d.q.close()
	close(d.mail.queue)
	var err error
	select {
	case <-d.q.wait():
	case <-ctx.Done():
		err = ctx.Err()
	}
	mailDone := make(chan struct{})
	go func() {
		d.mailWG.Wait()
		close(mailDone)
	}()
	select {
	case <-mailDone:
	case <-ctx.Done():
		err = ctx.Err()
	}
	d.cancel()
	<-d.q.wait()
	<-mailDone
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, f := range fifos {
		if e := f.close(stopCtx); e != nil && err == nil {
			err = e
		}
	}
	return err
}
