package container

import (
	"context"
	"strings"
	"time"
)

// Healthcheck defaults, as docker has them.
const (
	defaultHealthInterval = 30 * time.Second
	defaultHealthTimeout  = 30 * time.Second
	defaultHealthRetries  = 3
	healthLogEntries      = 5
	healthOutputMax       = 4096
)

// initialHealth is a new run's health: starting when it has a check.
func initialHealth(c *Container) *Health {
	if hc := c.Config.Healthcheck; hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE" {
		return &Health{Status: "starting"}
	}
	return nil
}

// startHealth runs the container's healthcheck while it runs.
func (m *Manager) startHealth(e *entry) {
	hc := e.c.Config.Healthcheck
	if hc == nil || len(hc.Test) == 0 || hc.Test[0] == "NONE" || e.c.State.Health == nil {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	e.health = cancel
	interval, timeout, retries := hc.Interval, hc.Timeout, hc.Retries
	if interval <= 0 {
		interval = defaultHealthInterval
	}
	if timeout <= 0 {
		timeout = defaultHealthTimeout
	}
	if retries <= 0 {
		retries = defaultHealthRetries
	}
	startInterval := hc.StartInterval
	if startInterval <= 0 {
		startInterval = 5 * time.Second
	}
	args := healthArgs(hc.Test)
	id, started := e.c.ID, e.c.State.StartedAt
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for first := true; ; first = false {
			// In the start period probes come every start_interval, as
			// docker 25+ does, so service_healthy is reached quickly.
			wait := interval
			inStart := time.Since(started) < hc.StartPeriod
			if inStart {
				wait = startInterval
			}
			if first {
				wait = min(wait, startInterval)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			probeCtx, cancelProbe := context.WithTimeout(ctx, timeout)
			start := time.Now()
			code, out, err := m.probe(probeCtx, id, args)
			cancelProbe()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				code, out = -1, err.Error()
				if probeCtx.Err() != nil {
					out = "Health check exceeded timeout (" + timeout.String() + ")"
				}
			}
			m.recordProbe(e, ctx, HealthProbe{Start: start, End: time.Now(), ExitCode: code, Output: truncate(out)}, retries, inStart)
		}
	}()
}

// recordProbe updates the health state with one probe's result.
func (m *Manager) recordProbe(e *entry, ctx context.Context, p HealthProbe, retries int, inStart bool) {
	e.op.Lock()
	defer e.op.Unlock()
	if ctx.Err() != nil || e.c.State.Health == nil {
		return
	}
	h := e.c.State.Health
	before := h.Status
	h.Log = append(h.Log, p)
	if len(h.Log) > healthLogEntries {
		h.Log = h.Log[len(h.Log)-healthLogEntries:]
	}
	if p.ExitCode == 0 {
		h.Status, h.FailingStreak = "healthy", 0
	} else if !(inStart && h.Status == "starting") {
		// Failures in the start period do not count, as docker has it.
		h.FailingStreak++
		if h.FailingStreak >= retries {
			h.Status = "unhealthy"
		}
	}
	_ = m.save(e.c)
	if h.Status != before {
		m.emit(e.c, "health_status", func(ev *Event) { ev.Health = h.Status })
	}
}

func healthArgs(test []string) []string {
	switch test[0] {
	case "CMD":
		return test[1:]
	case "CMD-SHELL":
		return []string{"/bin/sh", "-c", strings.Join(test[1:], " ")}
	}
	return []string{"/bin/sh", "-c", strings.Join(test, " ")}
}

func truncate(s string) string {
	if len(s) > healthOutputMax {
		return s[:healthOutputMax]
	}
	return s
}
