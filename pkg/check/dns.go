package check

import (
	"context"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// DNSDefaultRetry is DNS_CHECK's own retry default (check_dns.h
// DNS_DEFAULT_RETRY); its delay_before_retry defaults to delay_loop.
const DNSDefaultRetry = 3

// dnsTypes are the types DNS_CHECK accepts (check_dns.c DNS_TYPE).
var dnsTypes = map[string]uint16{
	"A": dns.TypeA, "NS": dns.TypeNS, "CNAME": dns.TypeCNAME, "SOA": dns.TypeSOA,
	"MX": dns.TypeMX, "TXT": dns.TypeTXT, "AAAA": dns.TypeAAAA,
	"RRSIG": dns.TypeRRSIG, "DNSKEY": dns.TypeDNSKEY,
}

// ParseDNSType reads DNS_CHECK's type, case-insensitive; "" is SOA
// (DNS_DEFAULT_TYPE).
func ParseDNSType(s string) (uint16, error) {
	if s == "" {
		return dns.TypeSOA, nil
	}
	if t, ok := dnsTypes[strings.ToUpper(s)]; ok {
		return t, nil
	}
	return 0, fmt.Errorf("DNS_CHECK type %q: want one of A NS CNAME SOA MX TXT AAAA RRSIG DNSKEY", s)
}

// DNS is DNS_CHECK: one query over UDP with recursion desired; up when an
// answer with our ID comes back with rcode NOERROR. keepalived looks at
// nothing else: an empty answer section is a success, and so is an answer
// of another type (check_dns.c dns_recv_thread).
type DNS struct {
	Conn
	Type uint16 // 0: SOA
	Name string // "": the root
}

// Check sends the query.
func (d DNS) Check(ctx context.Context) Result {
	qt := d.Type
	if qt == 0 {
		qt = dns.TypeSOA
	}
	name := dns.Fqdn(d.Name)
	m := new(dns.Msg)
	m.SetQuestion(name, qt)
	m.RecursionDesired = true
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	cl := &dns.Client{Net: "udp", Dialer: d.dialer("udp")}
	q := fmt.Sprintf("%s %s", name, dns.TypeToString[qt])
	r, _, err := cl.ExchangeContext(ctx, m, d.addr())
	if err != nil {
		return down("DNS query %s to %s failed: %s", q, d.addr(), explain(err))
	}
	if r.Rcode != dns.RcodeSuccess {
		return down("DNS query %s to %s answered %s", q, d.addr(), dns.RcodeToString[r.Rcode])
	}
	return up("DNS query %s to %s answered NOERROR with %d answer(s)", q, d.addr(), len(r.Answer))
}
