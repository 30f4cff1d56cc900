package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestLinksWriteHostsAndOptInEnv guards the two things links give besides
// DNS: an /etc/hosts line for the alias, and (only with x-berth link_env)
// the legacy variables docker made opt-in.
func TestLinksWriteHostsAndOptInEnv(t *testing.T) {
	p := newProject(t, "links", "links")
	p.importBusybox()
	p.berth("up", "-d")

	hosts := p.berth("exec", "-T", "web", "cat", "/etc/hosts")
	if !regexp.MustCompile(`(?m)^\d+\.\d+\.\d+\.\d+\tdatabase links-db-1 [0-9a-f]{12}$`).MatchString(hosts) {
		t.Errorf("/etc/hosts has no line for the link alias:\n%s", hosts)
	}
	env := p.berth("exec", "-T", "web", "env")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^DATABASE_PORT=tcp://\d+\.\d+\.\d+\.\d+:5432$`),
		regexp.MustCompile(`(?m)^DATABASE_PORT_5432_TCP_ADDR=\d+\.\d+\.\d+\.\d+$`),
		regexp.MustCompile(`(?m)^DATABASE_NAME=/links-web-1/database$`),
		regexp.MustCompile(`(?m)^DATABASE_ENV_POSTGRES_DB=app$`),
	} {
		if !want.MatchString(env) {
			t.Errorf("web's environment lacks %s:\n%s", want, env)
		}
	}
	if plain := p.berth("exec", "-T", "plain", "env"); strings.Contains(plain, "DATABASE_") {
		t.Errorf("a service that did not opt in got link variables:\n%s", plain)
	}
}
