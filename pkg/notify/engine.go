package notify

import (
	"fmt"
	"slices"

	"github.com/vrrpkit/vrrpkit/pkg/config"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// State is an instance or group state as notify reports it.
type State int

// The states keepalived's notify code knows (vrrp_notify.c), plus the
// master_rx_lower_pri event, which only the FIFO and its own script see.
const (
	StateUnknown State = iota
	StateInit
	StateBackup
	StateMaster
	StateFault
	StateStop
	StateDeleted
	EventMasterRxLowerPri
)

// Word is the word keepalived writes for the state in FIFO lines and in
// the arguments of `notify` scripts.
func (s State) Word() string {
	switch s {
	case StateBackup:
		return "BACKUP"
	case StateMaster:
		return "MASTER"
	case StateFault:
		return "FAULT"
	case StateStop:
		return "STOP"
	case StateDeleted:
		return "DELETED"
	case EventMasterRxLowerPri:
		return "MASTER_RX_LOWER_PRI"
	}
	return "{UNKNOWN}"
}

func stateOf(s pb.VrrpState) State {
	switch s {
	case pb.VrrpState_VRRP_STATE_INIT:
		return StateInit
	case pb.VrrpState_VRRP_STATE_BACKUP:
		return StateBackup
	case pb.VrrpState_VRRP_STATE_MASTER:
		return StateMaster
	case pb.VrrpState_VRRP_STATE_FAULT:
		return StateFault
	case pb.VrrpState_VRRP_STATE_STOP:
		return StateStop
	}
	return StateUnknown
}

// Kind says whether an Action is about an instance or a sync group.
type Kind string

const (
	KindInstance Kind = "INSTANCE"
	KindGroup    Kind = "GROUP"
)

// ScriptCall is one script to run: the configured command line and the
// words notify appends to it.
type ScriptCall struct {
	// Keyword is the config keyword ("notify_master", "notify").
	Keyword string
	Script  *config.Script
	Extra   []string
	// Stop: keepalived runs STOP scripts with a 1 s kill timer
	// (system_call_script(..., TIMER_HZ, ...) in vrrp_notify.c).
	Stop bool
}

// Args are the words to exec.
func (c ScriptCall) Args() []string {
	out := make([]string, 0, len(c.Script.Args)+len(c.Extra))
	out = append(out, c.Script.Args...)
	return append(out, c.Extra...)
}

// Mail is one smtp_alert message, before headers.
type Mail struct {
	Kind    Kind
	Name    string
	Subject string // the part after "[router_id] VRRP Instance NAME - "
	Body    string
}

// Action is what one state change of one instance or group asks for, in
// keepalived's order (send_instance_notifies / send_group_notifies): the
// state's own script, the generic `notify`, the FIFO line, the mail.
type Action struct {
	Kind     Kind
	Name     string
	State    State
	Priority uint32
	Scripts  []ScriptCall
	// FIFOLine is written to every notify FIFO; always set.
	FIFOLine string
	Mail     *Mail
}

// Key names the queue the action's scripts run on: one per instance and
// one per group.
func (a Action) Key() string { return string(a.Kind) + " " + a.Name }

type instState struct {
	state     State
	prio      uint32
	lastEmail State
}

type groupState struct {
	state     State
	lastEmail State
}

// engine turns events into Actions. It is pure: no I/O, no clock, no
// goroutines; the Dispatcher serialises calls to it.
type engine struct {
	plan   *Plan
	inst   map[string]*instState
	groups map[string]*groupState
}

func newEngine() *engine {
	return &engine{plan: NewPlan(nil, 0, ""), inst: map[string]*instState{}, groups: map[string]*groupState{}}
}

func (e *engine) instance(name string) *instState {
	s := e.inst[name]
	if s == nil {
		s = &instState{}
		e.inst[name] = s
	}
	return s
}

func (e *engine) group(name string) *groupState {
	s := e.groups[name]
	if s == nil {
		s = &groupState{}
		e.groups[name] = s
	}
	return s
}

// snapshot learns the current states without acting on them: a snapshot
// opens every (re)connected event stream, and what it shows has been
// notified already, by the transitions that led there.
func (e *engine) snapshot(s *pb.EventSnapshot) {
	for _, in := range s.GetInstances() {
		st := e.instance(in.GetName())
		st.state = stateOf(in.GetState())
		st.prio = in.GetEffectivePriority()
		if st.lastEmail == StateUnknown {
			st.lastEmail = st.state
		}
	}
	for name, gp := range e.plan.Groups {
		g := e.group(name)
		if ns := e.derivedGroupState(gp); ns != StateUnknown {
			g.state = ns
			if g.lastEmail == StateUnknown {
				g.lastEmail = ns
			}
		}
	}
}

// derivedGroupState is the group state its members show, for snapshots.
func (e *engine) derivedGroupState(gp *GroupPlan) State {
	all, stop := 0, 0
	var master, backup bool
	for _, m := range gp.Members {
		s := e.inst[m]
		if s == nil {
			continue
		}
		all++
		switch s.state {
		case StateFault:
			return StateFault
		case StateMaster:
			master = true
		case StateBackup:
			backup = true
		case StateStop:
			stop++
		}
	}
	switch {
	case master:
		return StateMaster
	case backup:
		return StateBackup
	case all > 0 && stop == all:
		return StateStop
	}
	return StateUnknown
}

// transition is one StateTransition of the stream.
func (e *engine) transition(t *pb.StateTransition) []Action {
	ip := e.plan.Instances[t.GetInstance()]
	st := e.instance(t.GetInstance())
	to := stateOf(t.GetTo())
	prev := st.state
	st.state, st.prio = to, t.GetPriority()
	if ip == nil || to == prev || (to != StateBackup && to != StateMaster && to != StateFault && to != StateStop) {
		// Unknown instance (removed, or not yet applied), a repeat, or
		// INIT: keepalived has no notification for any of them.
		return nil
	}
	out := []Action{e.instanceAction(ip, st, to)}
	if ip.Group != "" {
		if a, ok := e.groupStep(e.plan.Groups[ip.Group], to); ok {
			out = append(out, a)
		}
	}
	return out
}

func (e *engine) instanceAction(ip *InstancePlan, st *instState, state State) Action {
	a := Action{Kind: KindInstance, Name: ip.Name, State: state, Priority: st.prio}
	// get_iscript() picks the script from the state before
	// send_instance_notifies turns an unannounced DELETED into FAULT, so a
	// removed instance without notify_deleted runs no notify_fault (seen
	// with keepalived 2.2.7: testdata/keepalived-2.2.7/calls.log, VI_4).
	own, kw := ownScript(&ip.Notify, state)
	if state == StateDeleted && !ip.NotifyDeleted {
		state = StateFault
		a.State = state
	}
	if own != nil {
		a.Scripts = append(a.Scripts, ScriptCall{Keyword: kw, Script: own, Stop: state == StateStop})
	}
	if ip.Notify.Any != nil {
		a.Scripts = append(a.Scripts, ScriptCall{Keyword: "notify", Script: ip.Notify.Any, Stop: state == StateStop,
			Extra: []string{string(KindInstance), ip.Name, state.Word(), fmt.Sprint(st.prio)}})
	}
	a.FIFOLine = fifoLine(KindInstance, ip.Name, state, st.prio)
	if m := e.mail(KindInstance, ip.Name, state, ip.SMTPAlert, &st.lastEmail); m != nil {
		a.Mail = m
	}
	return a
}

// groupStep moves a sync group's state after one of its members moved to
// `to`. vrrpd keeps the members together; keepalived's group state
// follows the member that triggered the sync (vrrp_sync.c
// vrrp_sync_master/backup/fault, and try_up_instance, which leaves FAULT
// only once no member is faulty), and notify_shutdown stops the group
// after all its instances.
func (e *engine) groupStep(gp *GroupPlan, to State) (Action, bool) {
	if gp == nil {
		return Action{}, false
	}
	g := e.group(gp.Name)
	anyFault, allStop := false, true
	for _, m := range gp.Members {
		s := e.inst[m]
		if s != nil && s.state == StateFault {
			anyFault = true
		}
		if s == nil || s.state != StateStop {
			allStop = false
		}
	}
	next := g.state
	switch to {
	case StateFault:
		next = StateFault
	case StateMaster, StateBackup:
		if !anyFault {
			next = to
		}
	case StateStop:
		if allStop {
			next = StateStop
		}
	}
	if next == g.state {
		return Action{}, false
	}
	g.state = next
	return e.groupAction(gp, g, next), true
}

func (e *engine) groupAction(gp *GroupPlan, g *groupState, state State) Action {
	a := Action{Kind: KindGroup, Name: gp.Name, State: state}
	own, kw := ownScript(&gp.Notify, state)
	if own != nil {
		// send_group_notifies runs a group's own script with notify_exec,
		// without the STOP kill timer instances get.
		a.Scripts = append(a.Scripts, ScriptCall{Keyword: kw, Script: own})
	}
	if gp.Notify.Any != nil {
		// notify_script_exec(gscript, "GROUP", state, gname, 0): a group's
		// priority is always 0.
		a.Scripts = append(a.Scripts, ScriptCall{Keyword: "notify", Script: gp.Notify.Any, Stop: state == StateStop,
			Extra: []string{string(KindGroup), gp.Name, state.Word(), "0"}})
	}
	a.FIFOLine = fifoLine(KindGroup, gp.Name, state, 0)
	a.Mail = e.mail(KindGroup, gp.Name, state, gp.SMTPAlert, &g.lastEmail)
	return a
}

// mail applies vrrp_smtp_notifier / vrrp_sync_smtp_notifier: one mail per
// state entered, none twice in a row for the same state, no FAULT mail
// under no_email_faults.
func (e *engine) mail(kind Kind, name string, state State, enabled bool, last *State) *Mail {
	if !enabled || e.plan.Mail == nil || *last == state {
		return nil
	}
	if state == StateFault && e.plan.NoEmailFaults {
		return nil
	}
	m := &Mail{Kind: kind, Name: name}
	group := kind == KindGroup
	switch {
	case state == StateMaster && group:
		m.Subject, m.Body = "Entering MASTER state", "=> All VRRP group instances are now in MASTER state <="
	case state == StateBackup && group:
		m.Subject, m.Body = "Entering BACKUP state", "=> All VRRP group instances are now in BACKUP state <="
	case state == StateFault && group:
		m.Subject, m.Body = "Entering FAULT state", "=> All VRRP group instances are now in FAULT state <="
	case state == StateStop && group:
		m.Subject, m.Body = "Stopping", "=> All VRRP group instances are now stopping <="
	case state == StateMaster:
		m.Subject, m.Body = "Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="
	case state == StateBackup:
		m.Subject, m.Body = "Entering BACKUP state", "=> VRRP Instance is no longer owning VRRP VIPs <="
	case state == StateFault:
		m.Subject, m.Body = "Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <="
	case state == StateStop:
		m.Subject, m.Body = "Stopping", "=> VRRP Instance stopping <="
	case state == StateDeleted:
		m.Subject, m.Body = "Deleted", "=> VRRP Deleted at reload <="
	default:
		return nil
	}
	*last = state
	return m
}

// masterRxLowerPri is send_event_notify(vrrp, VRRP_EVENT_MASTER_RX_LOWER_PRI):
// the instance's notify_master_rx_lower_pri with no extra arguments, and
// a FIFO line; no generic notify, no mail.
func (e *engine) masterRxLowerPri(name string, prio uint32) (Action, bool) {
	ip := e.plan.Instances[name]
	if ip == nil {
		return Action{}, false
	}
	e.instance(name).prio = prio
	a := Action{Kind: KindInstance, Name: name, State: EventMasterRxLowerPri, Priority: prio,
		FIFOLine: fifoLine(KindInstance, name, EventMasterRxLowerPri, prio)}
	if s := ip.Notify.MasterRxLowerPri; s != nil {
		a.Scripts = []ScriptCall{{Keyword: "notify_master_rx_lower_pri", Script: s}}
	}
	return a, true
}

// apply installs a new plan and returns what removed instances announce.
// clear_diff_vrrp (vrrp.c): a removed instance sends DELETED when
// notify_deleted is set, otherwise FAULT unless it already was in FAULT.
// Removed groups announce nothing.
func (e *engine) apply(p *Plan) []Action {
	old := e.plan
	e.plan = p
	var out []Action
	for _, name := range sortedKeys(old.Instances) {
		if p.Instances[name] != nil {
			continue
		}
		ip := old.Instances[name]
		st := e.instance(name)
		if ip.NotifyDeleted || st.state != StateFault {
			// The old plan's mail settings decide, as the old vrrp_t does.
			saved := e.plan
			e.plan = old
			out = append(out, e.instanceAction(ip, st, StateDeleted))
			e.plan = saved
		}
		delete(e.inst, name)
	}
	for name := range e.groups {
		if p.Groups[name] == nil {
			delete(e.groups, name)
		}
	}
	return out
}

func fifoLine(kind Kind, name string, state State, prio uint32) string {
	// vrrp_notify.c notify_fifo(): "%s \"%s\" %s %d\n".
	return fmt.Sprintf("%s \"%s\" %s %d\n", kind, name, state.Word(), prio)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ownScript is the notify_<state> script of an instance or a group for
// state, and its keyword; nil if none is configured. A group never gets
// StateDeleted.
func ownScript(n *config.Notify, state State) (*config.Script, string) {
	switch state {
	case StateMaster:
		return n.Master, "notify_master"
	case StateBackup:
		return n.Backup, "notify_backup"
	case StateFault:
		return n.Fault, "notify_fault"
	case StateStop:
		return n.Stop, "notify_stop"
	case StateDeleted:
		return n.Deleted, "notify_deleted"
	}
	return nil, ""
}
