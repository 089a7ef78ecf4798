package notify

import (
	"net"
	"strconv"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/config"
)

// DefaultSMTPConnectTimeout is keepalived's smtp_connect_timeout default
// (global_data.h DEFAULT_SMTP_CONNECTION_TIMEOUT, 30 s).
const DefaultSMTPConnectTimeout = 30 * time.Second

// Plan is what a configuration asks notify to do, derived once per Apply.
// It holds no state and does no I/O.
type Plan struct {
	Generation uint64
	Instances  map[string]*InstancePlan
	Groups     map[string]*GroupPlan
	// FIFOs: notify_fifo (everything) then vrrp_notify_fifo (VRRP only);
	// both get every VRRP line, as keepalived's notify_fifo() writes to
	// both (vrrp_notify.c).
	FIFOs []FIFOPlan
	// Mail is nil when no alert can be sent: keepalived's smtp_alert()
	// returns at once without notification_email or smtp_server (smtp.c).
	Mail *MailPlan
	// Security is enable_script_security, passed to every script.
	Security bool
	// NoEmailFaults is no_email_faults: no mail for FAULT.
	NoEmailFaults bool
}

// InstancePlan is one vrrp_instance's notifications.
type InstancePlan struct {
	Name   string
	Notify config.Notify
	// NotifyDeleted: notify_deleted was configured, so a removed instance
	// reports DELETED instead of keepalived's old FAULT.
	NotifyDeleted bool
	SMTPAlert     bool
	// Group is the vrrp_sync_group it belongs to, "" for none.
	Group string
}

// GroupPlan is one vrrp_sync_group's notifications.
type GroupPlan struct {
	Name      string
	Notify    config.Notify
	SMTPAlert bool
	Members   []string
}

// FIFOPlan is notify_fifo or vrrp_notify_fifo.
type FIFOPlan struct {
	// Kind is the keyword: "notify_fifo" or "vrrp_notify_fifo".
	Kind        string
	Path        string
	User, Group string
	// Script is the reader keepalived starts, with the FIFO path appended
	// as its last argument (keepalived.conf(5), notify_fifo_script).
	Script *config.Script
}

// MailPlan is how to send smtp_alert mail.
type MailPlan struct {
	// Addr is host:port of smtp_server.
	Addr     string
	Helo     string
	From     string
	To       []string
	RouterID string
	Timeout  time.Duration
}

// NewPlan derives a Plan from a parsed configuration. hostname stands for
// keepalived's local_name (the default router_id, smtp_helo_name and the
// host part of notification_email_from).
func NewPlan(cfg *config.Config, generation uint64, hostname string) *Plan {
	p := &Plan{
		Generation: generation,
		Instances:  map[string]*InstancePlan{},
		Groups:     map[string]*GroupPlan{},
	}
	if cfg == nil {
		return p
	}
	g := &cfg.GlobalDefs
	p.Security = g.EnableScriptSecurity
	p.NoEmailFaults = g.NoEmailFaults
	// vrrp.c (vrrp_complete_instance, and the sync-group loop): an unset
	// smtp_alert takes global smtp_alert_vrrp, then smtp_alert, else off.
	alert := func(own *bool) bool {
		switch {
		case own != nil:
			return *own
		case g.SMTPAlertVRRP != nil:
			return *g.SMTPAlertVRRP
		case g.SMTPAlert != nil:
			return *g.SMTPAlert
		}
		return false
	}
	for _, in := range cfg.VRRPInstances {
		if in == nil || in.Name == "" {
			continue
		}
		p.Instances[in.Name] = &InstancePlan{
			Name:          in.Name,
			Notify:        in.Notify,
			NotifyDeleted: in.Notify.Deleted != nil || in.Has("notify_deleted"),
			SMTPAlert:     alert(in.SMTPAlert),
			Group:         in.SyncGroup,
		}
	}
	for _, sg := range cfg.VRRPSyncGroups {
		if sg == nil || sg.Name == "" {
			continue
		}
		gp := &GroupPlan{Name: sg.Name, Notify: sg.Notify, SMTPAlert: alert(sg.SMTPAlert)}
		for _, m := range sg.Group {
			// vrrp_sync_set_group: a member must exist and belong to one
			// group only; the first group that names it wins.
			ip := p.Instances[m]
			if ip == nil || (ip.Group != "" && ip.Group != sg.Name) {
				continue
			}
			ip.Group = sg.Name
			gp.Members = append(gp.Members, m)
		}
		if len(gp.Members) > 0 {
			p.Groups[sg.Name] = gp
		}
	}
	for _, in := range p.Instances {
		if in.Group != "" && p.Groups[in.Group] == nil {
			in.Group = ""
		}
	}
	for _, f := range []struct {
		kind string
		fifo *config.FIFO
	}{{"notify_fifo", g.NotifyFIFO}, {"vrrp_notify_fifo", g.VRRPNotifyFIFO}} {
		if f.fifo == nil || f.fifo.Path == "" {
			continue
		}
		p.FIFOs = append(p.FIFOs, FIFOPlan{Kind: f.kind, Path: f.fifo.Path, User: f.fifo.User, Group: f.fifo.Group, Script: f.fifo.Script})
	}
	if g.SMTPServer != "" && len(g.NotificationEmail) > 0 {
		port := g.SMTPServerPort
		if port == 0 {
			port = 25
		}
		m := &MailPlan{
			Addr:     net.JoinHostPort(g.SMTPServer, strconv.Itoa(int(port))),
			Helo:     g.SMTPHeloName,
			From:     g.NotificationEmailFrom,
			To:       append([]string(nil), g.NotificationEmail...),
			RouterID: g.RouterID,
			Timeout:  g.SMTPConnectTimeout.Std(),
		}
		// global_data.c init_global_data: defaults from local_name.
		if m.Helo == "" {
			m.Helo = hostname
		}
		if m.From == "" {
			m.From = "root@" + hostname
		}
		if m.Timeout <= 0 {
			m.Timeout = DefaultSMTPConnectTimeout
		}
		p.Mail = m
	}
	if p.Mail != nil && p.Mail.RouterID == "" {
		p.Mail.RouterID = hostname
	}
	return p
}
