package main

import (
	"strings"
	"testing"

	"github.com/mattn/go-shellwords"
	"github.com/spf13/cobra"
)

// TestEveryCommandHasExamples keeps `berth help COMMAND` useful: every
// command a user can run shows at least one example.
func TestEveryCommandHasExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			if sub.Runnable() && strings.TrimSpace(sub.Example) == "" {
				t.Errorf("%s has no example", sub.CommandPath())
			}
			walk(sub)
		}
	}
	walk(newRootCommand())
}

// TestExamplesParse runs every example's command line through the real
// command tree's flag parsing (not its action), so an example cannot name
// a flag the command does not have.
func TestExamplesParse(t *testing.T) {
	root := newRootCommand()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			for _, line := range strings.Split(sub.Example, "\n") {
				checkExampleLine(t, sub.CommandPath(), line)
			}
			walk(sub)
		}
	}
	walk(root)
}

func checkExampleLine(t *testing.T, owner, line string) {
	t.Helper()
	line = strings.TrimSpace(line)
	if i := strings.Index(line, " #"); i >= 0 {
		line = strings.TrimSpace(line[:i])
	}
	for _, sep := range []string{"&&", "|"} {
		if i := strings.Index(line, sep); i >= 0 && strings.HasPrefix(strings.TrimSpace(line[i+len(sep):]), "berth ") {
			checkExampleLine(t, owner, line[:i])
			checkExampleLine(t, owner, line[i+len(sep):])
			return
		}
	}
	if i := strings.Index(line, "|"); i >= 0 {
		line = strings.TrimSpace(line[:i])
	}
	if i := strings.Index(line, " < "); i >= 0 {
		line = line[:i]
	}
	if !strings.HasPrefix(line, "berth ") {
		return
	}
	args, err := shellwords.Parse(line)
	if err != nil {
		t.Errorf("%s: example %q: %v", owner, line, err)
		return
	}
	root := newRootCommand()
	cmd, rest, err := root.Traverse(args[1:])
	if err != nil {
		t.Errorf("%s: example %q: %v", owner, line, err)
		return
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Errorf("%s: example %q: %v", owner, line, err)
		return
	}
	if cmd.Args != nil {
		if err := cmd.Args(cmd, cmd.Flags().Args()); err != nil {
			t.Errorf("%s: example %q: %v", owner, line, err)
		}
	}
}
