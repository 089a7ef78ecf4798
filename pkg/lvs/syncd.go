package lvs

// The IPVS state that is not a service: the connection-sync daemons
// (lvs_sync_daemon), the protocol timeouts (lvs_timeouts) and the whole-table
// flush (lvs_flush, lvs_flush_on_stop). cloudflare/ipvs has no sync-daemon
// calls, so these speak the kernel's IPVS generic netlink family directly
// (linux/ip_vs.h: IPVS_CMD_NEW_DAEMON, _DEL_DAEMON, _GET_DAEMON,
// _SET_CONFIG, _GET_CONFIG, _FLUSH), as keepalived's libipvs does
// (check/libipvs.c ipvs_start_daemon, ipvs_stop_daemon, ipvs_set_timeout,
// ipvs_flush). The encoders are pure, for golden-bytes tests.

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// Values from linux/ip_vs.h.
const (
	ipvsGenlName    = "IPVS"
	ipvsGenlVersion = 1

	cmdNewDaemon = 9
	cmdDelDaemon = 10
	cmdGetDaemon = 11
	cmdSetConfig = 12
	cmdGetConfig = 13
	cmdFlush     = 17

	cmdAttrDaemon        = 3
	cmdAttrTimeoutTCP    = 4
	cmdAttrTimeoutTCPFin = 5
	cmdAttrTimeoutUDP    = 6

	daemonAttrState       = 1
	daemonAttrMcastIfn    = 2
	daemonAttrSyncID      = 3
	daemonAttrSyncMaxlen  = 4
	daemonAttrMcastGroup  = 5
	daemonAttrMcastGroup6 = 6
	daemonAttrMcastPort   = 7
	daemonAttrMcastTTL    = 8

	// IP_VS_IFNAME_MAXLEN counts the NUL.
	ifnameMaxLen = 16
)

// SyncState is a sync daemon's role (IP_VS_STATE_MASTER / _BACKUP): a
// master multicasts the connections of its table, a backup joins the group
// and installs what it hears. The kernel runs at most one of each.
type SyncState uint32

const (
	SyncMaster SyncState = 1
	SyncBackup SyncState = 2
)

func (s SyncState) String() string {
	switch s {
	case SyncMaster:
		return "master"
	case SyncBackup:
		return "backup"
	}
	return fmt.Sprintf("state(%d)", uint32(s))
}

// The kernel's defaults for what a daemon leaves unset
// (net/netfilter/ipvs/ip_vs_sync.c: IP_VS_SYNC_GROUP, IP_VS_SYNC_PORT, and a
// TTL of 1 in start_sync_thread).
var (
	DefaultSyncGroup = netip.MustParseAddr("224.0.0.81")
)

const (
	DefaultSyncPort = 8848
	DefaultSyncTTL  = 1
)

// SyncDaemon is one kernel sync daemon. Zero MaxLen, Port, TTL and an
// invalid Group leave the kernel's defaults; the kernel reports the values
// it runs with.
type SyncDaemon struct {
	State     SyncState
	Interface string // mcast_ifn
	SyncID    uint8
	MaxLen    uint16 // UDP payload; the kernel's default follows the MTU
	Port      uint16
	TTL       uint8
	Group     netip.Addr
}

func (d SyncDaemon) String() string {
	s := fmt.Sprintf("%s on %s syncid %d", d.State, d.Interface, d.SyncID)
	if d.Group.IsValid() {
		s += " group " + d.Group.String()
	}
	if d.Port != 0 {
		s += fmt.Sprintf(" port %d", d.Port)
	}
	if d.TTL != 0 {
		s += fmt.Sprintf(" ttl %d", d.TTL)
	}
	if d.MaxLen != 0 {
		s += fmt.Sprintf(" maxlen %d", d.MaxLen)
	}
	return s
}

// Runs reports whether the kernel daemon k (as GET_DAEMON reports it, with
// the defaults filled in) runs what d asks for: a daemon whose settings
// changed has to be stopped and started again, as keepalived does on a
// reload that changes them (vrrp/vrrp_daemon.c reload_vrrp_thread,
// ipvswrapper.c ipvs_syncd_changed).
func (d SyncDaemon) Runs(k SyncDaemon) bool {
	port, ttl, group := d.Port, d.TTL, d.Group
	if port == 0 {
		port = DefaultSyncPort
	}
	if ttl == 0 {
		ttl = DefaultSyncTTL
	}
	if !group.IsValid() {
		group = DefaultSyncGroup
	}
	return d.State == k.State && d.Interface == k.Interface && d.SyncID == k.SyncID &&
		port == k.Port && ttl == k.TTL && group == k.Group &&
		(d.MaxLen == 0 || d.MaxLen == k.MaxLen)
}

// Timeouts are IPVS's connection timeouts (ipvsadm --set TCP TCPFIN UDP),
// whole seconds; zero leaves a value unchanged.
type Timeouts struct {
	TCP, TCPFin, UDP time.Duration
}

// DefaultTimeouts are the kernel's own (ip_vs_proto_tcp.c tcp_timeouts
// ESTABLISHED and FIN_WAIT, ip_vs_proto_udp.c udp_timeouts NORMAL), what a
// fresh network namespace runs with.
var DefaultTimeouts = Timeouts{TCP: 15 * time.Minute, TCPFin: 2 * time.Minute, UDP: 5 * time.Minute}

// Globals is the IPVS state besides the services and their destinations.
type Globals interface {
	SyncDaemons() ([]SyncDaemon, error)
	StartSyncDaemon(SyncDaemon) error
	StopSyncDaemon(SyncState) error
	Timeouts() (Timeouts, error)
	SetTimeouts(Timeouts) error
	// Flush removes every service (and so every destination) in the
	// kernel's table, vrrpkit's or not.
	Flush() error
	Close() error
}

// genlGlobals is Globals over the IPVS generic netlink family. Not safe
// for concurrent use.
type genlGlobals struct {
	c      *genetlink.Conn // nil after a timeout: redialled on next use
	family uint16
}

// globalsTimeout bounds one request, so that vrrpd can always go on and
// exit. The kernel answers a daemon's stop once its threads have ended:
// under qemu TCG a backup's stop was answered only after more than 10 s in
// about one run of four (once not for minutes), though GET_DAEMON no longer
// listed it after milliseconds; StopSyncDaemon therefore waits
// stopAnswerWait and then asks GET_DAEMON.
const globalsTimeout = 10 * time.Second

// OpenGlobals connects to the kernel's IPVS generic netlink family (needs
// CAP_NET_ADMIN for every change, and the ip_vs module).
func OpenGlobals() (Globals, error) {
	g := &genlGlobals{}
	if err := g.dial(); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *genlGlobals) dial() error {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return fmt.Errorf("lvs: opening generic netlink: %w", err)
	}
	f, err := c.GetFamily(ipvsGenlName)
	if err != nil {
		c.Close()
		return fmt.Errorf("lvs: IPVS generic netlink family: %w", err)
	}
	g.c, g.family = c, f.ID
	return nil
}

func (g *genlGlobals) Close() error {
	if g.c == nil {
		return nil
	}
	return g.c.Close()
}

func (g *genlGlobals) do(what string, cmd uint8, data []byte, flags netlink.HeaderFlags) ([]genetlink.Message, error) {
	return g.doWithin(globalsTimeout, what, cmd, data, flags)
}

func (g *genlGlobals) doWithin(d time.Duration, what string, cmd uint8, data []byte, flags netlink.HeaderFlags) ([]genetlink.Message, error) {
	if g.c == nil {
		if err := g.dial(); err != nil {
			return nil, err
		}
	}
	if err := g.c.SetDeadline(time.Now().Add(d)); err != nil {
		return nil, fmt.Errorf("lvs: %s: %w", what, err)
	}
	msgs, err := g.c.Execute(genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: ipvsGenlVersion},
		Data:   data,
	}, g.family, flags)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// A late answer would be read as the next request's: start over.
		g.c.Close()
		g.c = nil
	}
	if err != nil {
		return nil, fmt.Errorf("lvs: %s: %w", what, err)
	}
	return msgs, nil
}

func (g *genlGlobals) SyncDaemons() ([]SyncDaemon, error) {
	msgs, err := g.do("listing sync daemons", cmdGetDaemon, nil, netlink.Request|netlink.Dump)
	if err != nil {
		return nil, err
	}
	out := make([]SyncDaemon, 0, len(msgs))
	for _, m := range msgs {
		d, err := decodeDaemon(m.Data)
		if err != nil {
			return nil, fmt.Errorf("lvs: reading a sync daemon: %w", err)
		}
		out = append(out, d)
	}
	return out, nil
}

func (g *genlGlobals) StartSyncDaemon(d SyncDaemon) error {
	b, err := encodeNewDaemon(d)
	if err != nil {
		return err
	}
	_, err = g.do("starting sync daemon "+d.String(), cmdNewDaemon, b, netlink.Request|netlink.Acknowledge)
	return err
}

// stopAnswerWait is how long a daemon's stop is waited for before asking
// GET_DAEMON whether it is gone (see globalsTimeout).
const stopAnswerWait = 2 * time.Second

func (g *genlGlobals) StopSyncDaemon(s SyncState) error {
	b, err := encodeDelDaemon(s)
	if err != nil {
		return err
	}
	_, err = g.doWithin(stopAnswerWait, "stopping the "+s.String()+" sync daemon", cmdDelDaemon, b, netlink.Request|netlink.Acknowledge)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	// The kernel clears the daemon at once and answers when its thread
	// has ended, which can take long: gone is stopped.
	ds, lerr := g.SyncDaemons()
	if lerr == nil && !slices.ContainsFunc(ds, func(d SyncDaemon) bool { return d.State == s }) {
		return nil
	}
	return err
}

func (g *genlGlobals) Timeouts() (Timeouts, error) {
	msgs, err := g.do("reading timeouts", cmdGetConfig, nil, netlink.Request)
	if err != nil {
		return Timeouts{}, err
	}
	if len(msgs) == 0 {
		return Timeouts{}, errors.New("lvs: reading timeouts: empty answer")
	}
	return decodeTimeouts(msgs[0].Data)
}

func (g *genlGlobals) SetTimeouts(t Timeouts) error {
	b, err := encodeTimeouts(t)
	if err != nil {
		return err
	}
	_, err = g.do("setting timeouts", cmdSetConfig, b, netlink.Request|netlink.Acknowledge)
	return err
}

func (g *genlGlobals) Flush() error {
	_, err := g.do("flushing the IPVS table", cmdFlush, nil, netlink.Request|netlink.Acknowledge)
	return err
}

// encodeNewDaemon is IPVS_CMD_NEW_DAEMON's payload: the state, interface and
// sync id the kernel requires (ip_vs_ctl.c ip_vs_genl_new_daemon), then only
// the options that are set, as keepalived's ipvs_start_daemon sends them.
func encodeNewDaemon(d SyncDaemon) ([]byte, error) {
	if d.State != SyncMaster && d.State != SyncBackup {
		return nil, fmt.Errorf("lvs: sync daemon state %d is neither master nor backup", uint32(d.State))
	}
	if d.Interface == "" || len(d.Interface) >= ifnameMaxLen {
		return nil, fmt.Errorf("lvs: sync daemon interface %q: want 1 to %d bytes", d.Interface, ifnameMaxLen-1)
	}
	if d.Group.IsValid() && !d.Group.IsMulticast() {
		return nil, fmt.Errorf("lvs: sync daemon group %s is not multicast", d.Group)
	}
	ae := netlink.NewAttributeEncoder()
	ae.Nested(cmdAttrDaemon, func(n *netlink.AttributeEncoder) error {
		n.Uint32(daemonAttrState, uint32(d.State))
		n.String(daemonAttrMcastIfn, d.Interface)
		n.Uint32(daemonAttrSyncID, uint32(d.SyncID))
		if d.MaxLen != 0 {
			n.Uint16(daemonAttrSyncMaxlen, d.MaxLen)
		}
		if d.Port != 0 {
			n.Uint16(daemonAttrMcastPort, d.Port)
		}
		if d.TTL != 0 {
			n.Uint8(daemonAttrMcastTTL, d.TTL)
		}
		switch {
		case d.Group.Is4():
			// nla_get_in_addr: the address in network order.
			a := d.Group.As4()
			n.Bytes(daemonAttrMcastGroup, a[:])
		case d.Group.Is6():
			a := d.Group.As16()
			n.Bytes(daemonAttrMcastGroup6, a[:])
		}
		return nil
	})
	return ae.Encode()
}

// encodeDelDaemon: the kernel stops a daemon by its state alone
// (ip_vs_genl_del_daemon).
func encodeDelDaemon(s SyncState) ([]byte, error) {
	if s != SyncMaster && s != SyncBackup {
		return nil, fmt.Errorf("lvs: sync daemon state %d is neither master nor backup", uint32(s))
	}
	ae := netlink.NewAttributeEncoder()
	ae.Nested(cmdAttrDaemon, func(n *netlink.AttributeEncoder) error {
		n.Uint32(daemonAttrState, uint32(s))
		return nil
	})
	return ae.Encode()
}

// decodeDaemon reads one GET_DAEMON answer (ip_vs_genl_fill_daemon).
func decodeDaemon(b []byte) (SyncDaemon, error) {
	var d SyncDaemon
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return d, err
	}
	found := false
	for ad.Next() {
		if ad.Type() != cmdAttrDaemon {
			continue
		}
		found = true
		ad.Nested(func(n *netlink.AttributeDecoder) error {
			for n.Next() {
				switch n.Type() {
				case daemonAttrState:
					d.State = SyncState(n.Uint32())
				case daemonAttrMcastIfn:
					d.Interface = n.String()
				case daemonAttrSyncID:
					d.SyncID = uint8(n.Uint32())
				case daemonAttrSyncMaxlen:
					d.MaxLen = n.Uint16()
				case daemonAttrMcastPort:
					d.Port = n.Uint16()
				case daemonAttrMcastTTL:
					d.TTL = n.Uint8()
				case daemonAttrMcastGroup, daemonAttrMcastGroup6:
					a, ok := netip.AddrFromSlice(n.Bytes())
					if !ok {
						return fmt.Errorf("multicast group of %d bytes", len(n.Bytes()))
					}
					d.Group = a
				}
			}
			return n.Err()
		})
	}
	if err := ad.Err(); err != nil {
		return d, err
	}
	if !found {
		return d, errors.New("no daemon attribute")
	}
	return d, nil
}

// encodeTimeouts is IPVS_CMD_SET_CONFIG's payload. The kernel keeps a value
// whose attribute is absent or zero (ip_vs_genl_set_config,
// ip_vs_set_timeout), so only what is set is sent.
func encodeTimeouts(t Timeouts) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	for _, x := range []struct {
		typ uint16
		d   time.Duration
	}{{cmdAttrTimeoutTCP, t.TCP}, {cmdAttrTimeoutTCPFin, t.TCPFin}, {cmdAttrTimeoutUDP, t.UDP}} {
		if x.d < 0 || x.d%time.Second != 0 || x.d/time.Second > 1<<31-1 {
			return nil, fmt.Errorf("lvs: timeout %v is not a whole number of seconds", x.d)
		}
		if x.d != 0 {
			ae.Uint32(x.typ, uint32(x.d/time.Second))
		}
	}
	return ae.Encode()
}

func decodeTimeouts(b []byte) (Timeouts, error) {
	var t Timeouts
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return t, err
	}
	for ad.Next() {
		s := time.Duration(0)
		switch ad.Type() {
		case cmdAttrTimeoutTCP, cmdAttrTimeoutTCPFin, cmdAttrTimeoutUDP:
			s = time.Duration(ad.Uint32()) * time.Second
		}
		switch ad.Type() {
		case cmdAttrTimeoutTCP:
			t.TCP = s
		case cmdAttrTimeoutTCPFin:
			t.TCPFin = s
		case cmdAttrTimeoutUDP:
			t.UDP = s
		}
	}
	return t, ad.Err()
}
