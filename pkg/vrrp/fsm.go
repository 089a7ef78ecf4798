package vrrp

// This file holds the VRRP router state machine of RFC 5798 §6 (VRRPv3), also used for
// VRRPv2 (RFC 3768 §6), with keepalived's FAULT state added.
//
// The machine is pure: it owns no socket, goroutine or clock. Every event method takes
// the current time and appends the actions the caller must perform, in order, to a slice
// the caller provides; Deadline says when the machine next wants Timer to be called.
// This is what lets vrrpd test failover timing to the microsecond with a fake clock, and
// keeps the hot path (ReceiveAdvert and Timer, hundreds of instances at 20 adverts per
// second) free of allocations.
//
// Time: all times are time.Time values supplied by the caller. In production pass
// time.Now(): it carries a monotonic clock reading and the machine only uses Add, Sub and
// Before on the values it is given, so deadlines follow the monotonic clock and are immune
// to wall-clock steps. Tests may pass any times that never go backwards.

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Priorities with a protocol meaning (RFC 5798 §5.2.4).
const (
	// fsmPriorityOwner is the priority of the router that owns the virtual addresses.
	fsmPriorityOwner = 255
	// fsmPriorityMaxBackup is the highest priority of a router that is not the owner.
	fsmPriorityMaxBackup = 254
	// fsmPriorityStop is sent by a master that stops being master (RFC 5798 §6.4.3,
	// Shutdown), so backups take over after Skew_Time instead of Master_Down_Interval.
	fsmPriorityStop = 0
)

// Advertisement interval limits. VRRPv3 carries a 12-bit interval in centiseconds
// (RFC 5798 §5.2.7), VRRPv2 an 8-bit interval in seconds (RFC 3768 §5.3.7).
const (
	fsmV3IntervalUnit = 10 * time.Millisecond
	fsmV3IntervalMax  = 4095 * fsmV3IntervalUnit
	fsmV2IntervalUnit = time.Second
	fsmV2IntervalMax  = 255 * time.Second
)

// State is the state of a virtual router: the three states of RFC 5798 §6.3 plus
// keepalived's FAULT.
type State uint8

const (
	// StateInitialize is the state before Startup and after Shutdown (RFC 5798 §6.4.1).
	// The machine holds no timer in it.
	StateInitialize State = iota
	// StateBackup monitors the master; its Master_Down_Timer is always armed
	// (RFC 5798 §6.4.2).
	StateBackup
	// StateMaster forwards for the virtual router; its Adver_Timer is always armed
	// (RFC 5798 §6.4.3).
	StateMaster
	// StateFault is keepalived's FAULT: the interface (or anything else the caller
	// folds into InterfaceDown, such as a failed track_interface) is down, so the
	// instance can neither send nor hear adverts. It holds no timer; InterfaceUp leaves
	// it. It is not an RFC state.
	StateFault
)

// String returns the state's name in keepalived's spelling, as notify scripts see it.
func (s State) String() string {
	switch s {
	case StateInitialize:
		return "INIT"
	case StateBackup:
		return "BACKUP"
	case StateMaster:
		return "MASTER"
	case StateFault:
		return "FAULT"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// ActionKind says what an Action asks the caller to do.
type ActionKind uint8

const (
	// ActionSendAdvert: send an ADVERTISEMENT carrying Action.Priority (0 when the
	// master steps down).
	ActionSendAdvert ActionKind = iota + 1
	// ActionBecomeMaster: the machine entered Master. Add the virtual addresses, send
	// gratuitous ARP (IPv4) or unsolicited Neighbor Advertisements (IPv6) for each
	// (RFC 5798 §6.4.2, Master_Down_Timer fires) and run notify_master. It always
	// follows the ActionSendAdvert of the same call, because a previous master must see
	// the advert and drop the addresses before the gratuitous ARPs move the traffic.
	ActionBecomeMaster
	// ActionBecomeBackup: the machine entered Backup. Remove the virtual addresses if
	// they are held (RFC 5798 §6.4.2: a backup must not answer for them) and run
	// notify_backup.
	ActionBecomeBackup
	// ActionEnterFault: the machine entered Fault. Remove the virtual addresses if
	// held and run notify_fault.
	ActionEnterFault
	// ActionStop: the machine went back to Initialize on Shutdown. Remove the virtual
	// addresses if held and run notify_stop.
	ActionStop
	// ActionAnnounce: a master re-announces its addresses: send gratuitous ARP
	// / unsolicited NA again, as Action.Reason says. The state does not change.
	ActionAnnounce
)

// AnnounceReason says why a master re-announces its addresses
// (ActionAnnounce). The caller picks how many messages to send for each
// (keepalived: garp_lower_prio_repeat and garp_lower_prio_delay for the
// first, garp_master_repeat and garp_master_delay for the second).
type AnnounceReason uint8

const (
	// AnnounceLowerPriorityMaster: a master heard another master that it
	// outranks. Both were master (a split brain: after a partition heals, or
	// when this router was frozen long enough for a backup to take over),
	// and hosts may be sending to the other one's MAC; the other router
	// yields on this router's next advert but sends no gratuitous ARP of its
	// own, so this router must (keepalived: vrrp_state_master_rx, "Received
	// advert from ... with lower priority").
	AnnounceLowerPriorityMaster AnnounceReason = iota + 1
	// AnnounceResumedLate: the master's Adver_Timer fired so late that the
	// backups' Master_Down_Interval may have run out meanwhile (the process
	// was frozen or starved): a backup may have taken over and moved the
	// hosts' neighbour entries, and may already have stepped down again on
	// this router's advert without saying so.
	AnnounceResumedLate
)

// String returns the reason's name.
func (r AnnounceReason) String() string {
	switch r {
	case AnnounceLowerPriorityMaster:
		return "lower priority master heard"
	case AnnounceResumedLate:
		return "resumed late"
	}
	return fmt.Sprintf("AnnounceReason(%d)", uint8(r))
}

// String returns the kind's name.
func (k ActionKind) String() string {
	switch k {
	case ActionSendAdvert:
		return "SendAdvert"
	case ActionBecomeMaster:
		return "BecomeMaster"
	case ActionBecomeBackup:
		return "BecomeBackup"
	case ActionEnterFault:
		return "EnterFault"
	case ActionStop:
		return "Stop"
	case ActionAnnounce:
		return "Announce"
	}
	return fmt.Sprintf("ActionKind(%d)", uint8(k))
}

// Action is one thing the caller must do, in the order returned.
//
// Every state change produces exactly one action of kind ActionBecomeMaster,
// ActionBecomeBackup, ActionEnterFault or ActionStop; its From and To are the transition
// record (From is the state left, To the state entered) that notify scripts and status
// need. For ActionSendAdvert From and To are both zero (StateInitialize) and meaningless.
type Action struct {
	Kind ActionKind
	// Priority is the priority to put in the advert (ActionSendAdvert only).
	Priority uint8
	// From and To record the transition (state-change kinds only).
	From, To State
	// Reason says why the addresses are announced again (ActionAnnounce
	// only).
	Reason AnnounceReason
}

// IsTransition reports whether a is a state change.
func (a Action) IsTransition() bool {
	return a.Kind != ActionSendAdvert && a.Kind != ActionAnnounce
}

// String formats a for logs and test failures.
func (a Action) String() string {
	switch a.Kind {
	case ActionSendAdvert:
		return fmt.Sprintf("SendAdvert(priority=%d)", a.Priority)
	case ActionAnnounce:
		return fmt.Sprintf("Announce(%v)", a.Reason)
	}
	return fmt.Sprintf("%v(%v->%v)", a.Kind, a.From, a.To)
}

// Advert is what the state machine needs from a received ADVERTISEMENT that the I/O and
// wire layers have already validated (RFC 5798 §7.1: TTL/hop limit 255, version, VRID,
// checksum, addresses).
type Advert struct {
	// Src is the IP source address of the packet: the sender's primary address, used to
	// break priority ties (RFC 5798 §6.4.3).
	Src netip.Addr
	// Priority is the sender's priority; 0 means the master is stepping down.
	Priority uint8
	// MaxAdvertInterval is the interval carried in the packet. VRRPv3 backups learn it
	// as Master_Adver_Interval (RFC 5798 §6.4.2); VRRPv2 must match the configured
	// interval (RFC 3768 §7.1) and zero there means "not checked".
	MaxAdvertInterval time.Duration
}

// MasterReason is RFC 6527's vrrpv3StatisticsNewMasterReason: why the machine last
// became master.
type MasterReason uint8

const (
	// MasterReasonNotMaster: never became master.
	MasterReasonNotMaster MasterReason = iota
	// MasterReasonPriority: the master sent priority 0 and we took over after
	// Skew_Time.
	MasterReasonPriority
	// MasterReasonPreempted: we preempted (discarded a lower-priority master's adverts,
	// or started as the address owner or with StartAsMaster).
	MasterReasonPreempted
	// MasterReasonMasterNoResponse: the master fell silent for Master_Down_Interval.
	MasterReasonMasterNoResponse
)

// String returns the reason's RFC 6527 name.
func (r MasterReason) String() string {
	switch r {
	case MasterReasonNotMaster:
		return "notMaster"
	case MasterReasonPriority:
		return "priority"
	case MasterReasonPreempted:
		return "preempted"
	case MasterReasonMasterNoResponse:
		return "masterNoResponse"
	}
	return fmt.Sprintf("MasterReason(%d)", uint8(r))
}

// Stats are the per-virtual-router statistics of RFC 6527 (VRRPv3 MIB,
// vrrpv3StatisticsTable) that the state machine can know. Errors found while decoding
// packets (checksum, TTL, version, VRID, address list) belong to the wire layer.
type Stats struct {
	// MasterTransitions is vrrpv3StatisticsMasterTransitions: times the machine
	// entered Master.
	MasterTransitions uint64
	// NewMasterReason is vrrpv3StatisticsNewMasterReason.
	NewMasterReason MasterReason
	// AdvertsReceived is vrrpv3StatisticsRcvdAdvertisements: adverts given to
	// ReceiveAdvert, in any state.
	AdvertsReceived uint64
	// AdvertsSent counts ActionSendAdvert actions, priority 0 ones included.
	AdvertsSent uint64
	// PriorityZeroReceived is vrrpv3StatisticsRcvdPriZeroPackets.
	PriorityZeroReceived uint64
	// PriorityZeroSent is vrrpv3StatisticsSentPriZeroPackets.
	PriorityZeroSent uint64
	// AdvertIntervalErrors is vrrpStatsAdvertiseIntervalErrors (RFC 2787): VRRPv2
	// adverts discarded because their interval differs from ours (RFC 3768 §7.1).
	AdvertIntervalErrors uint64
	// LowerPriorityMastersHeard counts adverts a master received from
	// another master that it outranks (AnnounceLowerPriorityMaster).
	LowerPriorityMastersHeard uint64
	// ResumedLate counts Adver_Timer expiries handled so late that a backup
	// may have taken over (AnnounceResumedLate).
	ResumedLate uint64
}

// Config is the configuration of one virtual router instance, already validated and
// defaulted by the config layer (see Validate for the rules New enforces).
type Config struct {
	// VRID is the Virtual Router Identifier, 1..255 (RFC 5798 §5.2.3).
	VRID uint8
	// Version is the VRRP version, 2 (RFC 3768) or 3 (RFC 5798).
	Version uint8
	// Priority is the configured priority, 1..255 (RFC 5798 §5.2.4). 255 marks the
	// address owner: it becomes master at Startup without waiting, always preempts, and
	// its priority is never changed by SetPriority (keepalived does the same:
	// vrrp_set_effective_priority ignores owners).
	Priority uint8
	// AdvertInterval is Advertisement_Interval (RFC 5798 §6.1): a multiple of 10 ms
	// from 10 ms to 40.95 s for VRRPv3, whole seconds from 1 s to 255 s for VRRPv2.
	AdvertInterval time.Duration
	// Preempt is Preempt_Mode (RFC 5798 §6.1). keepalived's default is true;
	// `nopreempt` sets it false. The address owner preempts regardless (RFC 5798 §6.1).
	Preempt bool
	// PreemptDelay is keepalived's preempt_delay: how long a backup keeps accepting a
	// lower-priority master, counted from the first such advert it sees in its current
	// stay in Backup (see ReceiveAdvert). 0 disables it. It has no effect when Preempt
	// is false.
	PreemptDelay time.Duration
	// StartAsMaster makes a non-owner instance enter Master at Startup exactly as the
	// owner does (send an advert, take the addresses), then fall back to Backup by the
	// ordinary RFC rules as soon as it hears a better master. This is what a restarted
	// vrrpd needs to resume as master without a failover (design.md, flow 5), so it
	// applies whatever Preempt says.
	//
	// It is keepalived 1.2's meaning of `state MASTER`, not keepalived 2.x's. Since
	// keepalived 1.3 (vrrp_scheduler.c, vrrp_init_state) only the address owner goes
	// straight to MASTER; a non-owner with `state MASTER` starts in BACKUP and waits the
	// normal Master_Down_Interval (keepalived.conf(5): "If the priority is 255, then the
	// instance will transition immediately to MASTER if state MASTER is specified;
	// otherwise the instance will wait between 3 and 4 advert intervals"). So, for
	// parity with keepalived 2.x, the config layer should not set it from `state MASTER`
	// for a non-owner. keepalived also clears `nopreempt` and `preempt_delay` on a
	// `state MASTER` instance ("nopreempt will not work with initial state MASTER").
	StartAsMaster bool
	// PrimaryAddr is this router's primary address on the interface: the source of its
	// adverts, compared with an advert's source to break a priority tie (RFC 5798
	// §6.4.3). When it is the zero Addr every tie is lost.
	PrimaryAddr netip.Addr
	// Accept is Accept_Mode (RFC 5798 §6.1). The state machine does not use it; it is
	// kept so that Config describes the whole instance.
	Accept bool
	// LowerPrioNoAdvert is keepalived's lower_prio_no_advert: a master that
	// hears a master it outranks does not answer it with an advert at once
	// (it still re-announces its addresses, and its next scheduled advert
	// makes the other one yield). The default, false, answers at once, which
	// ends a split brain within one packet.
	LowerPrioNoAdvert bool
	// HigherPrioSendAdvert is keepalived's higher_prio_send_advert: a master
	// that hears a master that outranks it sends one advert of its own before
	// it becomes backup, so that the other router learns of it (useful with
	// unicast peers that were not hearing each other).
	HigherPrioSendAdvert bool
}

// Validate reports whether c can drive a Machine.
func (c Config) Validate() error {
	if c.VRID == 0 {
		return errors.New("vrrp: VRID must be 1..255")
	}
	if c.Priority == 0 {
		return errors.New("vrrp: priority must be 1..255")
	}
	if c.PreemptDelay < 0 {
		return fmt.Errorf("vrrp: negative preempt delay %v", c.PreemptDelay)
	}
	switch c.Version {
	case 2:
		if c.AdvertInterval < fsmV2IntervalUnit || c.AdvertInterval > fsmV2IntervalMax ||
			c.AdvertInterval%fsmV2IntervalUnit != 0 {
			return fmt.Errorf("vrrp: VRRPv2 advert interval %v must be whole seconds from 1s to 255s", c.AdvertInterval)
		}
	case 3:
		if c.AdvertInterval < fsmV3IntervalUnit || c.AdvertInterval > fsmV3IntervalMax ||
			c.AdvertInterval%fsmV3IntervalUnit != 0 {
			return fmt.Errorf("vrrp: VRRPv3 advert interval %v must be a multiple of 10ms from 10ms to 40.95s", c.AdvertInterval)
		}
	default:
		return fmt.Errorf("vrrp: version %d, want 2 or 3", c.Version)
	}
	return nil
}

// fsmTimer says which RFC timer the deadline belongs to. The machine needs at most one
// at a time: Adver_Timer in Master, Master_Down_Timer in Backup.
type fsmTimer uint8

const (
	fsmTimerNone fsmTimer = iota
	fsmTimerAdver
	fsmTimerMasterDown
)

// Machine is the state machine of one virtual router instance. Create it with New. It
// is not safe for concurrent use; each instance belongs to one goroutine of the caller.
type Machine struct {
	cfg Config

	state State
	// priority is the effective priority: cfg.Priority moved by SetPriority.
	priority uint8
	// masterAdverInterval is Master_Adver_Interval (RFC 5798 §6.1).
	masterAdverInterval time.Duration

	timer    fsmTimer
	deadline time.Time

	// ifDown is set between InterfaceDown and InterfaceUp, in any state, so that a
	// Startup while the interface is down goes to Fault.
	ifDown bool

	// preemptArmed and preemptAt implement keepalived's preempt_delay: once armed, a
	// lower-priority master is accepted until preemptAt.
	preemptArmed bool
	preemptAt    time.Time

	// nextReason is why we would become master if the down timer fired now.
	nextReason MasterReason

	// wantMaster is set by HoldBackup and cleared by an accepted advert or any
	// transition.
	wantMaster bool

	stats Stats
}

// New returns a machine in StateInitialize, or the reason cfg fails
// Config.Validate: a machine never runs with made-up timers.
func New(cfg Config) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Machine{
		cfg:                 cfg,
		state:               StateInitialize,
		priority:            cfg.Priority,
		masterAdverInterval: cfg.AdvertInterval,
	}, nil
}

// SetPrimaryAddr sets the address the equal-priority tie-break compares
// with (RFC 5798 §6.4.3): it is known only once the interface is, which can
// be after New.
func (m *Machine) SetPrimaryAddr(a netip.Addr) { m.cfg.PrimaryAddr = a }

// Config returns the configuration the machine was created with.
func (m *Machine) Config() Config { return m.cfg }

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Priority returns the effective priority, the one put in adverts.
func (m *Machine) Priority() uint8 { return m.priority }

// Stats returns a copy of the statistics.
func (m *Machine) Stats() Stats { return m.stats }

// Deadline returns when the machine wants Timer to be called, or the zero time when no
// timer is armed (Initialize and Fault).
func (m *Machine) Deadline() time.Time {
	if m.timer == fsmTimerNone {
		return time.Time{}
	}
	return m.deadline
}

// MasterAdverInterval returns Master_Adver_Interval: for VRRPv3 the interval learned
// from the current master's adverts, otherwise the configured interval.
func (m *Machine) MasterAdverInterval() time.Duration { return m.masterAdverInterval }

// SkewTime returns Skew_Time for the effective priority.
//
// RFC 5798 §6.1: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256.
// RFC 3768 §6.1 (VRRPv2): Skew_Time = (256 - Priority) / 256 seconds.
//
// It is computed in nanoseconds and truncated, so it is exact for every priority at the
// usual intervals (e.g. 156/256 s = 609.375 ms). keepalived computes the same value in
// microseconds; the two never differ by a microsecond or more.
func (m *Machine) SkewTime() time.Duration {
	unit := m.masterAdverInterval
	if m.cfg.Version == 2 {
		unit = time.Second
	}
	return time.Duration(256-int64(m.priority)) * unit / 256
}

// MasterDownInterval returns Master_Down_Interval = 3 * Master_Adver_Interval +
// Skew_Time (RFC 5798 §6.1; RFC 3768 §6.1 with the configured interval).
func (m *Machine) MasterDownInterval() time.Duration {
	return 3*m.masterAdverInterval + m.SkewTime()
}

// Startup handles the Startup event (RFC 5798 §6.4.1). It does nothing unless the
// machine is in Initialize.
//
// The address owner (priority 255), and an instance with StartAsMaster, sends an
// advert and becomes master at once. Any other instance becomes backup and
// waits Master_Down_Interval for a master to make itself heard. If the interface is
// down (InterfaceDown was called and InterfaceUp was not) the machine enters Fault
// instead, as keepalived does at start-up.
func (m *Machine) Startup(now time.Time, out []Action) []Action {
	if m.state != StateInitialize {
		return out
	}
	// RFC 5798 §6.4.1: a backup starts with Master_Adver_Interval = Advertisement_Interval.
	m.masterAdverInterval = m.cfg.AdvertInterval
	if m.ifDown {
		return m.enter(now, StateFault, out)
	}
	if m.isOwner() || m.cfg.StartAsMaster {
		// RFC 6527 reason as keepalived records it for an owner (vrrp_init_state).
		m.nextReason = MasterReasonPreempted
		return m.becomeMaster(now, out)
	}
	m.nextReason = MasterReasonMasterNoResponse
	return m.enter(now, StateBackup, out)
}

// Shutdown handles the Shutdown event (RFC 5798 §6.4.2, §6.4.3): a master cancels its
// Adver_Timer and sends an advert with priority 0 so that the backups take over after
// Skew_Time; a backup cancels its Master_Down_Timer. Both, and Fault, return to
// Initialize. Shutdown in Initialize does nothing.
func (m *Machine) Shutdown(now time.Time, out []Action) []Action {
	switch m.state {
	case StateInitialize:
		return out
	case StateMaster:
		out = m.sendAdvert(out, fsmPriorityStop)
	}
	return m.enter(now, StateInitialize, out)
}

// Timer handles the expiry of the armed timer; call it once Deadline has passed. A call
// before the deadline, or with no timer armed, does nothing, so spurious or early
// wake-ups are harmless.
//
// Master (Adver_Timer, RFC 5798 §6.4.3): send an advert, re-arm.
// Backup (Master_Down_Timer, RFC 5798 §6.4.2): send an advert, become master.
//
// A late call fires once, and the next deadline is counted from now, not from the missed
// deadline: a process that was stalled sends one advert, not a burst (keepalived also
// re-arms from the current time).
func (m *Machine) Timer(now time.Time, out []Action) []Action {
	if m.timer == fsmTimerNone || now.Before(m.deadline) {
		return out
	}
	switch m.state {
	case StateMaster:
		// The backups last heard us when this timer was armed, one interval
		// before its deadline.
		silent := now.Sub(m.deadline) + m.cfg.AdvertInterval
		out = m.sendAdvert(out, m.priority)
		m.arm(fsmTimerAdver, now.Add(m.cfg.AdvertInterval))
		if silent >= m.minBackupDownInterval() {
			m.stats.ResumedLate++
			out = append(out, Action{Kind: ActionAnnounce, Reason: AnnounceResumedLate})
		}
	case StateBackup:
		out = m.becomeMaster(now, out)
	}
	return out
}

// minBackupDownInterval is the shortest Master_Down_Interval any backup can
// have for this master: 3 * Advertisement_Interval, Skew_Time counted as 0
// (its least value is 2/256 of an interval, at priority 254). A VRRPv3
// backup learns our interval from our adverts (RFC 5798 §6.4.2); a VRRPv2 one
// must be configured with it.
func (m *Machine) minBackupDownInterval() time.Duration {
	return 3 * m.cfg.AdvertInterval
}

// ReceiveAdvert handles a received ADVERTISEMENT for this virtual router. It is
// ignored in Initialize and Fault (but counted).
//
// The machine never fires an expired timer by itself: an advert delivered after the
// deadline but before Timer was called is handled in the current state, so a backup
// whose event loop was late re-arms on a live master's advert instead of flapping to
// master and straight back.
//
// VRRPv2 (RFC 3768 §7.1): an advert whose non-zero MaxAdvertInterval differs from the
// configured interval is discarded and counted in Stats.AdvertIntervalErrors.
//
// Backup (RFC 5798 §6.4.2):
//   - priority 0: the master is leaving; set Master_Down_Timer to Skew_Time.
//   - if Preempt_Mode is false, or the advert's priority is greater than or equal to
//     ours: learn Master_Adver_Interval (VRRPv3) and reset Master_Down_Timer to
//     Master_Down_Interval.
//   - otherwise (a lower-priority master and we may preempt): discard it, so the down
//     timer runs out and we take over. keepalived's preempt_delay adds one case: a
//     lower-priority master is still accepted until PreemptDelay after the first such
//     advert seen since entering Backup (the delay is disarmed again by an advert of
//     priority >= ours), as in keepalived's vrrp_state_backup.
//
// Master (RFC 5798 §6.4.3):
//   - priority 0: send an advert at once and reset Adver_Timer, so the backups hear
//     the current master instead of taking over.
//   - higher priority, or equal priority and a source address greater than
//     PrimaryAddr (unsigned, network byte order; IPv4-mapped IPv6 addresses are compared
//     as IPv4): learn Master_Adver_Interval (VRRPv3), set Master_Down_Timer to
//     Master_Down_Interval and become backup; with HigherPrioSendAdvert, send an
//     advert first.
//   - lower priority, or equal priority and a lower source address: the RFC
//     discards it, but another master exists, so (as keepalived does) answer with an
//     advert at once unless LowerPrioNoAdvert, and ask for the addresses to be
//     announced again (ActionAnnounce, AnnounceLowerPriorityMaster). Adver_Timer
//     keeps its schedule.
//   - the same priority from PrimaryAddr itself is our own advert looped back:
//     ignored.
func (m *Machine) ReceiveAdvert(now time.Time, a Advert, out []Action) []Action {
	m.stats.AdvertsReceived++
	if a.Priority == fsmPriorityStop {
		m.stats.PriorityZeroReceived++
	}
	if m.state != StateBackup && m.state != StateMaster {
		return out
	}
	if m.cfg.Version == 2 && a.MaxAdvertInterval != 0 && a.MaxAdvertInterval != m.cfg.AdvertInterval {
		m.stats.AdvertIntervalErrors++
		return out
	}

	if m.state == StateBackup {
		switch {
		case a.Priority == fsmPriorityStop:
			m.arm(fsmTimerMasterDown, now.Add(m.SkewTime()))
			m.nextReason = MasterReasonPriority
		case !m.preempts() || a.Priority >= m.priority || m.preemptDelayed(now):
			m.learnInterval(a)
			m.arm(fsmTimerMasterDown, now.Add(m.MasterDownInterval()))
			m.nextReason = MasterReasonMasterNoResponse
			// keepalived, vrrp_state_backup: "Now we have received a backup, we
			// want to be in BACKUP state."
			m.wantMaster = false
			if m.cfg.PreemptDelay > 0 {
				if a.Priority >= m.priority {
					m.preemptArmed = false
				} else if !m.preemptArmed {
					m.preemptArmed = true
					m.preemptAt = now.Add(m.cfg.PreemptDelay)
				}
			}
		default:
			// Discarded: the down timer keeps running from the last accepted advert.
			m.nextReason = MasterReasonPreempted
		}
		return out
	}

	// Master.
	if a.Priority == fsmPriorityStop {
		out = m.sendAdvert(out, m.priority)
		m.arm(fsmTimerAdver, now.Add(m.cfg.AdvertInterval))
		return out
	}
	cmp := a.Src.Unmap().Compare(m.cfg.PrimaryAddr.Unmap())
	switch {
	case a.Priority > m.priority || (a.Priority == m.priority && cmp > 0):
		if m.cfg.HigherPrioSendAdvert {
			out = m.sendAdvert(out, m.priority)
		}
		m.learnInterval(a)
		m.nextReason = MasterReasonMasterNoResponse
		return m.enter(now, StateBackup, out)
	case a.Priority == m.priority && cmp == 0:
		return out
	}
	m.stats.LowerPriorityMastersHeard++
	if !m.cfg.LowerPrioNoAdvert {
		out = m.sendAdvert(out, m.priority)
	}
	return append(out, Action{Kind: ActionAnnounce, Reason: AnnounceLowerPriorityMaster})
}

// SetPriority sets the effective priority, the configured one moved by tracking
// (track_script, track_interface weights...). Values are clamped to 1..254: 255 belongs
// to the address owner and 0 means "stepping down" on the wire (RFC 5798 §5.2.4). The
// owner's priority never changes (keepalived: vrrp_set_effective_priority).
//
// A master sends no extra advert: the next scheduled one carries the new priority, as
// in keepalived (vrrp_set_effective_priority only changes effective_priority), and a
// backup that now outranks it discards that advert and preempts when its down timer
// runs out. A backup moves its Master_Down_Timer by the change in Skew_Time, as
// keepalived does, so the deadline stays "last accepted advert +
// Master_Down_Interval"; whether it now preempts is decided by the next advert it
// receives.
func (m *Machine) SetPriority(now time.Time, priority uint8, out []Action) []Action {
	if m.isOwner() {
		return out
	}
	priority = max(1, min(priority, fsmPriorityMaxBackup))
	if priority == m.priority {
		return out
	}
	oldSkew := m.SkewTime()
	m.priority = priority
	if m.state == StateBackup {
		m.deadline = m.deadline.Add(m.SkewTime() - oldSkew)
	}
	return out
}

// WantsMaster reports whether the machine is a backup whose down timer ran out while
// its sync group held it in Backup (HoldBackup), and no advert was accepted since
// (keepalived's wantstate MASTER).
func (m *Machine) WantsMaster() bool { return m.wantMaster }

// HoldBackup is Timer for a backup whose sync group does not let it become master yet
// (SyncCanGoMaster): it stays in Backup, wanting Master, with Master_Down_Timer re-armed
// to a full Master_Down_Interval (keepalived: vrrp_sync_can_goto_master). It does
// nothing outside Backup or before the deadline.
func (m *Machine) HoldBackup(now time.Time) {
	if m.state != StateBackup || m.timer != fsmTimerMasterDown || now.Before(m.deadline) {
		return
	}
	m.wantMaster = true
	m.arm(fsmTimerMasterDown, now.Add(m.MasterDownInterval()))
}

// GoMaster makes a backup master at once because another member of its sync group
// became master (keepalived: vrrp_sync_master). It does nothing outside Backup.
func (m *Machine) GoMaster(now time.Time, reason MasterReason, out []Action) []Action {
	if m.state != StateBackup {
		return out
	}
	m.nextReason = reason
	return m.becomeMaster(now, out)
}

// GoBackup makes a master a backup because another member of its sync group did
// (keepalived: vrrp_sync_backup). Unlike a master leaving for Fault it sends no
// priority 0 advert (vrrp_state_leave_master with wantstate BACKUP). It does nothing
// outside Master.
func (m *Machine) GoBackup(now time.Time, out []Action) []Action {
	if m.state != StateMaster {
		return out
	}
	m.nextReason = MasterReasonMasterNoResponse
	return m.enter(now, StateBackup, out)
}

// InterfaceDown records that the interface is down and enters Fault from Backup or
// Master. A master first sends a priority 0 advert, as keepalived does
// (vrrp_state_leave_master), in case the packet still gets out. In Initialize it is
// only recorded, so that Startup goes to Fault. Repeated calls do nothing.
//
// The caller folds every fault source (link down, missing interface or address, failed
// track_interface) into one down/up signal.
func (m *Machine) InterfaceDown(now time.Time, out []Action) []Action {
	if m.ifDown {
		return out
	}
	m.ifDown = true
	switch m.state {
	case StateMaster:
		out = m.sendAdvert(out, fsmPriorityStop)
		return m.enter(now, StateFault, out)
	case StateBackup:
		return m.enter(now, StateFault, out)
	}
	return out
}

// InterfaceUp records that the interface is up again and leaves Fault: the address
// owner becomes master at once, any other instance becomes backup with
// Master_Adver_Interval reset to the configured interval and a full
// Master_Down_Interval to hear the current master (keepalived: vrrp_state_leave_fault).
// Outside Fault it is only recorded.
func (m *Machine) InterfaceUp(now time.Time, out []Action) []Action {
	if !m.ifDown {
		return out
	}
	m.ifDown = false
	if m.state != StateFault {
		return out
	}
	m.masterAdverInterval = m.cfg.AdvertInterval
	if m.isOwner() {
		m.nextReason = MasterReasonPreempted
		return m.becomeMaster(now, out)
	}
	m.nextReason = MasterReasonMasterNoResponse
	return m.enter(now, StateBackup, out)
}

// isOwner reports whether we own the virtual addresses (configured priority 255).
func (m *Machine) isOwner() bool { return m.cfg.Priority == fsmPriorityOwner }

// preempts is the effective Preempt_Mode: the owner always preempts (RFC 5798 §6.1,
// Preempt_Mode note).
func (m *Machine) preempts() bool { return m.cfg.Preempt || m.isOwner() }

// preemptDelayed reports whether preempt_delay still makes a backup accept a
// lower-priority master: the delay is configured and either not yet started or not yet
// over (keepalived's test: !preempt_time || preempt_time > now).
func (m *Machine) preemptDelayed(now time.Time) bool {
	return m.cfg.PreemptDelay > 0 && (!m.preemptArmed || now.Before(m.preemptAt))
}

// learnInterval sets Master_Adver_Interval from an accepted advert (VRRPv3 only, RFC
// 5798 §6.4.2 and §6.4.3). A zero interval cannot come from a sane master and would make
// the down interval almost nothing, so it is ignored; anything above the 12-bit wire
// maximum is clamped.
func (m *Machine) learnInterval(a Advert) {
	if m.cfg.Version != 3 || a.MaxAdvertInterval <= 0 {
		return
	}
	m.masterAdverInterval = min(a.MaxAdvertInterval, fsmV3IntervalMax)
}

// becomeMaster sends an advert and enters Master (RFC 5798 §6.4.1 and §6.4.2: send
// the advert, broadcast gratuitous ARPs, set Adver_Timer, transition).
func (m *Machine) becomeMaster(now time.Time, out []Action) []Action {
	out = m.sendAdvert(out, m.priority)
	m.stats.MasterTransitions++
	m.stats.NewMasterReason = m.nextReason
	return m.enter(now, StateMaster, out)
}

// enter moves to state to, arms the timer that state needs and appends the transition.
func (m *Machine) enter(now time.Time, to State, out []Action) []Action {
	from := m.state
	m.state = to
	m.wantMaster = false
	// preempt_delay counts from within one stay in Backup (keepalived resets
	// preempt_time on entering BACKUP).
	m.preemptArmed = false
	var kind ActionKind
	switch to {
	case StateMaster:
		kind = ActionBecomeMaster
		m.arm(fsmTimerAdver, now.Add(m.cfg.AdvertInterval))
	case StateBackup:
		kind = ActionBecomeBackup
		m.arm(fsmTimerMasterDown, now.Add(m.MasterDownInterval()))
	case StateFault:
		kind = ActionEnterFault
		m.arm(fsmTimerNone, time.Time{})
	default:
		kind = ActionStop
		m.arm(fsmTimerNone, time.Time{})
	}
	return append(out, Action{Kind: kind, From: from, To: to})
}

func (m *Machine) arm(t fsmTimer, deadline time.Time) {
	m.timer = t
	m.deadline = deadline
}

func (m *Machine) sendAdvert(out []Action, priority uint8) []Action {
	m.stats.AdvertsSent++
	if priority == fsmPriorityStop {
		m.stats.PriorityZeroSent++
	}
	return append(out, Action{Kind: ActionSendAdvert, Priority: priority})
}
