package lvs

// Mirror is a Kernel that answers Services and Destinations from its own
// copy of what the kernel holds, taken by one real dump and kept up to
// date by every change made through it, so that the Reconcile after a
// health change costs the changes it makes, not a netlink dump of every
// service and destination (5,000 real servers: a dump of 5,000
// destinations per health change). Refresh drops the copy: the next
// Reconcile dumps again and so sees what someone else changed (a service
// removed with ipvsadm comes back). A failed change also drops it, since
// the kernel's state is then not known.
//
// It is not safe for concurrent use; vrrpd's IPVS worker owns it.
type Mirror struct {
	k     Kernel
	valid bool
	svcs  map[ServiceKey]Service
	dests map[ServiceKey]map[DestKey]Destination
	dumps int
}

// NewMirror mirrors k; the first Reconcile dumps it.
func NewMirror(k Kernel) *Mirror { return &Mirror{k: k} }

// Refresh makes the next read dump the kernel.
func (m *Mirror) Refresh() { m.valid = false }

// Dumps reports how many times the kernel was dumped (for tests and
// figures).
func (m *Mirror) Dumps() int { return m.dumps }

func (m *Mirror) load() error {
	if m.valid {
		return nil
	}
	svcs, err := m.k.Services()
	if err != nil {
		return err
	}
	m.svcs = make(map[ServiceKey]Service, len(svcs))
	m.dests = make(map[ServiceKey]map[DestKey]Destination, len(svcs))
	for _, s := range svcs {
		ds, err := m.k.Destinations(s.ServiceKey)
		if err != nil {
			return err
		}
		m.svcs[s.ServiceKey] = s
		dm := make(map[DestKey]Destination, len(ds))
		for _, d := range ds {
			dm[d.DestKey] = d
		}
		m.dests[s.ServiceKey] = dm
	}
	m.valid = true
	m.dumps++
	return nil
}

// Services implements Kernel.
func (m *Mirror) Services() ([]Service, error) {
	if err := m.load(); err != nil {
		return nil, err
	}
	out := make([]Service, 0, len(m.svcs))
	for _, s := range m.svcs {
		out = append(out, s)
	}
	return out, nil
}

// Destinations implements Kernel.
func (m *Mirror) Destinations(k ServiceKey) ([]Destination, error) {
	if err := m.load(); err != nil {
		return nil, err
	}
	dm := m.dests[k]
	out := make([]Destination, 0, len(dm))
	for _, d := range dm {
		out = append(out, d)
	}
	return out, nil
}

// written records the outcome of a change: on success apply it to the
// copy, on failure forget the copy.
func (m *Mirror) written(err error, apply func()) error {
	if err != nil {
		m.valid = false
		return err
	}
	if m.valid {
		apply()
	}
	return nil
}

// NewService implements Kernel.
func (m *Mirror) NewService(s Service) error {
	return m.written(m.k.NewService(s), func() {
		m.svcs[s.ServiceKey] = s
		m.dests[s.ServiceKey] = map[DestKey]Destination{}
	})
}

// UpdateService implements Kernel.
func (m *Mirror) UpdateService(s Service) error {
	return m.written(m.k.UpdateService(s), func() { m.svcs[s.ServiceKey] = s })
}

// RemoveService implements Kernel.
func (m *Mirror) RemoveService(k ServiceKey) error {
	return m.written(m.k.RemoveService(k), func() {
		delete(m.svcs, k)
		delete(m.dests, k)
	})
}

// NewDestination implements Kernel.
func (m *Mirror) NewDestination(k ServiceKey, d Destination) error {
	return m.written(m.k.NewDestination(k, d), func() { m.destsOf(k)[d.DestKey] = d })
}

// UpdateDestination implements Kernel.
func (m *Mirror) UpdateDestination(k ServiceKey, d Destination) error {
	return m.written(m.k.UpdateDestination(k, d), func() { m.destsOf(k)[d.DestKey] = d })
}

// RemoveDestination implements Kernel.
func (m *Mirror) RemoveDestination(k ServiceKey, dk DestKey) error {
	return m.written(m.k.RemoveDestination(k, dk), func() { delete(m.destsOf(k), dk) })
}

func (m *Mirror) destsOf(k ServiceKey) map[DestKey]Destination {
	dm := m.dests[k]
	if dm == nil {
		dm = map[DestKey]Destination{}
		m.dests[k] = dm
	}
	return dm
}
