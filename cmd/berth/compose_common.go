package main

import (
	"context"
	"fmt"
	units "github.com/docker/go-units"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/daemon"
	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/internal/progress"
	"github.com/berth-dev/berth/manifest"
	"github.com/berth-dev/berth/reconcile"
)

// session is what a compose command works with: the daemon and, when the
// files could be loaded, the project.
type session struct {
	client   *api.Client
	projects *daemon.ProjectClient
	project  *manifest.Project
	name     string // the project's name, with or without files
}

// openSession loads the project (required unless optional) and connects to
// the daemon, starting it when needed.
func openSession(ctx context.Context, opts *globalOptions, optional bool) (*session, error) {
	s := &session{}
	p, err := loadProject(ctx, opts, nil)
	switch {
	case err == nil:
		s.project, s.name = p, p.Name
	case optional && opts.ProjectName != "":
		s.name = opts.ProjectName
	default:
		return nil, err
	}
	c, err := connect(ctx, opts)
	if err != nil {
		return nil, err
	}
	s.client, s.projects = c, daemon.Projects(c)
	return s, nil
}

func (s *session) close() { s.client.Close() }

// containers lists the project's containers, of services when given.
func (s *session) containers(ctx context.Context, all bool, services []string) ([]container.Container, error) {
	cs, err := s.client.Containers().List(ctx, container.ListOptions{All: all, Labels: map[string]string{reconcile.LabelProject: s.name}})
	if err != nil || len(services) == 0 {
		return cs, err
	}
	want := map[string]bool{}
	for _, name := range services {
		if s.project != nil {
			if _, ok := s.project.Services[name]; !ok {
				return nil, fmt.Errorf("no such service: %s", name)
			}
		}
		want[name] = true
	}
	var out []container.Container
	for _, c := range cs {
		if want[c.Config.Labels[reconcile.LabelService]] {
			out = append(out, c)
		}
	}
	return out, nil
}

// renderer picks how progress is shown, as --progress says, on stderr.
func renderer(opts *globalOptions, w io.Writer, title string) (progress.Renderer, error) {
	return progress.NewRenderer(progress.Mode(opts.Progress), w, isTerminal(w), title)
}

// parseScale reads --scale SERVICE=N flags into the project.
func applyScale(p *manifest.Project, scales []string) error {
	for _, s := range scales {
		name, n, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("--scale %q: want SERVICE=NUM", s)
		}
		num, err := strconv.Atoi(n)
		if err != nil {
			return fmt.Errorf("--scale %q: %q is not a number", s, n)
		}
		if err := p.Scale(name, num); err != nil {
			return err
		}
	}
	return nil
}

// durationFlag turns -t seconds into a duration (nil when not given).
func durationFlag(set bool, seconds int) *time.Duration {
	if !set {
		return nil
	}
	d := time.Duration(seconds) * time.Second
	return &d
}

// humanDuration says how long, as docker does ("2 minutes").
func humanDuration(d time.Duration) string { return units.HumanDuration(d) }

// statusText is docker's STATUS column: "Up 2 minutes (healthy)".
func statusText(c container.Container, now time.Time) string {
	st := c.State
	switch st.Status {
	case container.Running:
		s := "Up " + humanDuration(now.Sub(st.StartedAt))
		if st.Health != nil {
			s += " (" + st.Health.Status + ")"
		}
		return s
	case container.Paused:
		return "Up " + humanDuration(now.Sub(st.StartedAt)) + " (Paused)"
	case container.Restarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, humanDuration(now.Sub(st.FinishedAt)))
	case container.Exited:
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, humanDuration(now.Sub(st.FinishedAt)))
	case container.Created:
		return "Created"
	}
	return string(st.Status)
}

// portsText is docker's PORTS column: "0.0.0.0:8080->80/tcp, 443/tcp".
func portsText(c container.Container) string {
	var parts []string
	bound := map[string]bool{}
	for _, p := range c.Network.Ports {
		parts = append(parts, fmt.Sprintf("%s:%d->%d/%s", p.HostIP, p.HostPort, p.ContainerPort, p.Protocol))
		bound[fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)] = true
	}
	for _, p := range c.Config.ExposedPorts {
		k := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if !bound[k] {
			parts = append(parts, k)
			bound[k] = true
		}
	}
	return strings.Join(parts, ", ")
}

// commandText is docker's COMMAND column, quoted and cut at 20 characters.
func commandText(c container.Container, noTrunc bool) string {
	cmd := strings.Join(append([]string{c.Path}, c.Args...), " ")
	if !noTrunc && len([]rune(cmd)) > 20 {
		cmd = string([]rune(cmd)[:19]) + "…"
	}
	return strconv.Quote(cmd)
}
