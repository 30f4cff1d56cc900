package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/reconcile"
)

// logPrinter writes containers' lines with a "web-1  | " prefix, padded so
// the bars line up and coloured per container on a terminal.
type logPrinter struct {
	mu         sync.Mutex
	w          io.Writer
	prefix     bool
	timestamps bool
	color      bool
	width      int
	colors     map[string]string
}

var palette = []string{"36", "33", "32", "35", "34", "96", "93", "92", "95", "94"}

func newLogPrinter(w io.Writer, prefix, timestamps, color bool) *logPrinter {
	return &logPrinter{w: w, prefix: prefix, timestamps: timestamps, color: color, colors: map[string]string{}}
}

// prefixOf is the name a container's lines carry: service-N.
func prefixOf(c container.Container) string {
	l := c.Config.Labels
	if s, n := l[reconcile.LabelService], l[reconcile.LabelNumber]; s != "" && n != "" && l[reconcile.LabelOneOff] != "True" {
		return s + "-" + n
	}
	return c.Name
}

func (p *logPrinter) register(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.width = max(p.width, len(name))
	if _, ok := p.colors[name]; !ok {
		p.colors[name] = palette[len(p.colors)%len(palette)]
	}
}

func (p *logPrinter) line(name string, e api.LogEntry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	if p.prefix {
		pre := fmt.Sprintf("%-*s  | ", p.width, name)
		if p.color {
			pre = "\x1b[" + p.colors[name] + "m" + pre + "\x1b[0m"
		}
		b.WriteString(pre)
	}
	if p.timestamps {
		b.WriteString(e.Time.Format(time.RFC3339Nano) + " ")
	}
	b.WriteString(e.Line)
	if !strings.HasSuffix(e.Line, "\n") {
		b.WriteByte('\n')
	}
	io.WriteString(p.w, b.String())
}

func (p *logPrinter) note(name, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s %s\n", name, text)
}

// follower follows the logs of a set of containers.
type follower struct {
	wg   sync.WaitGroup
	done chan struct{}
}

func (f *follower) Wait()                    { f.wg.Wait() }
func (f *follower) allDone() <-chan struct{} { return f.done }

// startFollowing follows the logs of the services' running containers (all
// services when none are named), and of those started since began that
// ended already (a quick one-shot would go unseen, and its exit with it);
// each container whose stream ends (it stopped) is sent to exits with its
// final state.
func startFollowing(ctx context.Context, s *session, services []string, began time.Time, p *logPrinter, exits chan<- container.Container) *follower {
	f := &follower{done: make(chan struct{})}
	cs, err := s.containers(ctx, true, services)
	if err != nil {
		close(f.done)
		return f
	}
	cs = slices.DeleteFunc(cs, func(c container.Container) bool {
		if c.Config.Labels[reconcile.LabelOneOff] == "True" {
			return true
		}
		return c.State.Status != container.Running && c.State.StartedAt.Before(began)
	})
	for _, c := range cs {
		p.register(prefixOf(c))
	}
	for _, c := range cs {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			name := prefixOf(c)
			err := s.client.Containers().Logs(ctx, c.ID, api.LogsOptions{Follow: true, Tail: "all"}, func(e api.LogEntry) error {
				p.line(name, e)
				return nil
			})
			if ctx.Err() != nil || err != nil {
				return
			}
			if final, err := s.client.Containers().Inspect(context.WithoutCancel(ctx), c.ID); err == nil {
				p.note(name, fmt.Sprintf("exited with code %d", final.State.ExitCode))
				select {
				case exits <- final:
				case <-ctx.Done():
				}
			}
		}()
	}
	go func() { f.wg.Wait(); close(f.done) }()
	return f
}

type logsOptions struct {
	follow, timestamps, noLogPrefix, noColor bool
	tail, since, until                       string
	index                                    int
}

func newLogsCommand(opts *globalOptions) *cobra.Command {
	lo := &logsOptions{}
	c := &cobra.Command{
		Use:     "logs [OPTIONS] [SERVICE...]",
		Short:   "View output from containers",
		Example: "  berth logs -f web         # follow web's output\n  berth logs --tail 20      # the last 20 lines of every service",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogs(cmd, opts, lo, args)
		},
	}
	f := c.Flags()
	f.BoolVarP(&lo.follow, "follow", "f", false, "Follow log output")
	f.BoolVarP(&lo.timestamps, "timestamps", "t", false, "Show timestamps")
	f.StringVarP(&lo.tail, "tail", "n", "all", "Number of lines to show from the end of the logs for each container")
	f.StringVar(&lo.since, "since", "", "Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	f.StringVar(&lo.until, "until", "", "Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	f.BoolVar(&lo.noLogPrefix, "no-log-prefix", false, "Don't print prefix in logs")
	f.BoolVar(&lo.noColor, "no-color", false, "Produce monochrome output")
	f.IntVar(&lo.index, "index", 0, "Index of the container if service has multiple replicas")
	return c
}

func runLogs(cmd *cobra.Command, opts *globalOptions, lo *logsOptions, services []string) error {
	ctx := cmd.Context()
	s, err := openSession(ctx, opts, true)
	if err != nil {
		return err
	}
	defer s.close()
	cs, err := s.containers(ctx, true, services)
	if err != nil {
		return err
	}
	if lo.index > 0 {
		cs = slices.DeleteFunc(cs, func(c container.Container) bool {
			return c.Config.Labels[reconcile.LabelNumber] != strconv.Itoa(lo.index) || c.Config.Labels[reconcile.LabelOneOff] == "True"
		})
	}
	out := cmd.OutOrStdout()
	p := newLogPrinter(out, !lo.noLogPrefix, lo.timestamps, !lo.noColor && isTerminal(out))
	for _, c := range cs {
		p.register(prefixOf(c))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(cs))
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := prefixOf(c)
			errs[i] = s.client.Containers().Logs(ctx, c.ID, api.LogsOptions{Follow: lo.follow, Tail: lo.tail, Since: lo.since, Until: lo.until}, func(e api.LogEntry) error {
				p.line(name, e)
				return nil
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
