package notify

import (
	"testing"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

const engConf = `
global_defs {
  notification_email { a@example.test }
  smtp_server 127.0.0.1
  smtp_alert_vrrp
  no_email_faults
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  priority 150
  virtual_ipaddress { 192.0.2.1/32 }
  notify_master_rx_lower_pri "/bin/lower y"
  notify /bin/any
  smtp_alert false
}
vrrp_instance VI_2 {
  interface eth0
  virtual_router_id 2
  priority 100
  virtual_ipaddress { 192.0.2.2/32 }
  notify_fault /bin/f
}
`

// TestEngineRules: keepalived's rules for mail (smtp_alert inheritance,
// no_email_faults, no repeat), removal on reload and master_rx_lower_pri.
func TestEngineRules(t *testing.T) {
	e := newEngine()
	e.apply(NewPlan(parseConf(t, engConf), 1, "h"))
	if p := e.plan.Mail; p == nil || p.Addr != "127.0.0.1:25" || p.From != "root@h" || p.Helo != "h" || p.RouterID != "h" || p.Timeout != DefaultSMTPConnectTimeout {
		t.Fatalf("mail plan %+v", p)
	}
	step := func(name string, from, to pb.VrrpState) []Action {
		return e.transition(&pb.StateTransition{Instance: name, From: from, To: to, Priority: 100})
	}
	if a := step("VI_1", sBackup, sMaster); len(a) != 1 || a[0].Mail != nil {
		t.Fatalf("VI_1 has smtp_alert false: %+v", a)
	}
	if a := step("VI_2", sBackup, sMaster); a[0].Mail == nil || a[0].Mail.Subject != "Entering MASTER state" {
		t.Fatalf("VI_2 inherits smtp_alert_vrrp: %+v", a[0].Mail)
	}
	if a := step("VI_2", sMaster, sFault); a[0].Mail != nil || len(a[0].Scripts) != 1 {
		t.Fatalf("no_email_faults: %+v", a[0])
	}
	a, ok := e.masterRxLowerPri("VI_1", 150)
	if !ok || a.FIFOLine != "INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 150\n" || len(a.Scripts) != 1 || len(a.Scripts[0].Args()) != 2 {
		t.Fatalf("master_rx_lower_pri: %+v", a)
	}
	// Reload without both: VI_1 (MASTER, no notify_deleted) says FAULT
	// through `notify` only; VI_2 is in FAULT already and says nothing.
	acts := e.apply(NewPlan(parseConf(t, "global_defs {\n}\n"), 2, "h"))
	if len(acts) != 1 || acts[0].Name != "VI_1" || acts[0].State != StateFault ||
		len(acts[0].Scripts) != 1 || acts[0].Scripts[0].Keyword != "notify" || acts[0].FIFOLine != "INSTANCE \"VI_1\" FAULT 150\n" {
		t.Fatalf("removal: %+v", acts)
	}
}
