package dnsresolver

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// LinkEnvSpec describes one legacy link for its environment variables.
type LinkEnvSpec struct {
	// Alias is the link's alias in the linking container ("db").
	Alias string
	// Container is the linking container's name: ALIAS_NAME is
	// "/<Container>/<Alias>", as Docker names the link.
	Container string
	// IP is the linked container's address.
	IP netip.Addr
	// Ports are the linked container's exposed ports.
	Ports []Port
	// Env is the linked container's environment (KEY=VALUE): each becomes
	// ALIAS_ENV_KEY, except HOME and PATH.
	Env []string
}

// Port is an exposed port: number and protocol ("tcp", "udp", "sctp").
type Port struct {
	Number uint16
	Proto  string
}

// LinkEnv returns the environment variables Docker gave a container for a
// legacy link, in Docker's order, for services that opt in to them:
//
//	DB_PORT=tcp://10.0.0.3:5432             the first port (TCP first, then by number)
//	DB_PORT_5432_TCP=tcp://10.0.0.3:5432    and for every port:
//	DB_PORT_5432_TCP_ADDR=10.0.0.3
//	DB_PORT_5432_TCP_PORT=5432
//	DB_PORT_5432_TCP_PROTO=tcp
//	DB_PORT_8000_TCP_START=tcp://...:8000   for a run of consecutive ports,
//	DB_PORT_8000_TCP_PORT_START=8000        after the port that ends it
//	DB_PORT_8000_TCP_END=tcp://...:8002
//	DB_PORT_8000_TCP_PORT_END=8002
//	DB_NAME=/web/db
//	DB_ENV_POSTGRES_DB=app                  the target's environment
//
// The prefix is the alias upper-cased with '-' turned into '_'.
func LinkEnv(spec LinkEnvSpec) []string {
	alias := strings.ReplaceAll(strings.ToUpper(spec.Alias), "-", "_")
	ports := slices.Clone(spec.Ports)
	for i := range ports {
		ports[i].Proto = strings.ToLower(ports[i].Proto)
		if ports[i].Proto == "" {
			ports[i].Proto = "tcp"
		}
	}
	slices.SortFunc(ports, tcpFirst)
	ip := spec.IP.String()
	url := func(p Port) string { return fmt.Sprintf("%s://%s:%d", p.Proto, ip, p.Number) }
	prefix := func(p Port) string { return fmt.Sprintf("%s_PORT_%d_%s", alias, p.Number, strings.ToUpper(p.Proto)) }

	env := make([]string, 0, 2+len(ports)*4+len(spec.Env))
	var first, last Port // the run of consecutive ports being walked
	for i, p := range ports {
		if i == 0 {
			first, last = p, p
			env = append(env, alias+"_PORT="+url(p))
		}
		pre := prefix(p)
		env = append(env,
			pre+"="+url(p),
			pre+"_ADDR="+ip,
			fmt.Sprintf("%s_PORT=%d", pre, p.Number),
			pre+"_PROTO="+p.Proto)
		if p.Number == last.Number+1 && p.Proto == last.Proto {
			last = p
			if i < len(ports)-1 {
				continue
			}
		}
		if last != first {
			pre := prefix(first)
			env = append(env,
				pre+"_START="+url(first),
				fmt.Sprintf("%s_PORT_START=%d", pre, first.Number),
				pre+"_END="+url(last),
				fmt.Sprintf("%s_PORT_END=%d", pre, last.Number))
		}
		first, last = p, p
	}
	env = append(env, fmt.Sprintf("%s_NAME=/%s/%s", alias, spec.Container, spec.Alias))
	for _, kv := range spec.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "HOME" || k == "PATH" {
			continue // set by image builds, meaningless in another container
		}
		env = append(env, alias+"_ENV_"+k+"="+v)
	}
	return env
}

// tcpFirst orders ports as Docker does: TCP before other protocols, then by
// number.
func tcpFirst(a, b Port) int {
	if a.Proto == b.Proto {
		return cmp.Compare(a.Number, b.Number)
	}
	if a.Proto == "tcp" {
		return -1
	}
	if b.Proto == "tcp" {
		return 1
	}
	return cmp.Compare(a.Proto, b.Proto)
}
