package runtime

import (
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestValidate checks the spec errors a user gets, without root.
func TestValidate(t *testing.T) {
	base := func() *specs.Spec {
		s, err := DefaultSpec(SpecOptions{Args: []string{"true"}, Hostname: "h"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if err := Validate(base()); err != nil {
		t.Fatalf("the default spec does not validate: %v", err)
	}
	cases := []struct {
		name  string
		edit  func(*specs.Spec)
		class func(error) bool
	}{
		{"no args", func(s *specs.Spec) { s.Process.Args = nil }, errdefs.IsInvalidArgument},
		{"relative cwd", func(s *specs.Spec) { s.Process.Cwd = "tmp" }, errdefs.IsInvalidArgument},
		{"hostname without uts", func(s *specs.Spec) {
			var ns []specs.LinuxNamespace
			for _, n := range s.Linux.Namespaces {
				if n.Type != specs.UTSNamespace {
					ns = append(ns, n)
				}
			}
			s.Linux.Namespaces = ns
		}, errdefs.IsInvalidArgument},
		{"user namespace without maps", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		}, errdefs.IsInvalidArgument},
		{"maps without user namespace", func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
		}, errdefs.IsInvalidArgument},
		{"relative mount", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "data", Type: "tmpfs"})
		}, errdefs.IsInvalidArgument},
		{"host sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"vm.swappiness": "1"} }, errdefs.IsInvalidArgument},
		{"console size without terminal", func(s *specs.Spec) { s.Process.ConsoleSize = &specs.Box{Height: 1, Width: 1} }, errdefs.IsInvalidArgument},
		{"hooks", func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/true"}}}
		}, errdefs.IsNotImplemented},
	}
	for _, c := range cases {
		s := base()
		c.edit(s)
		if err := Validate(s); !c.class(err) {
			t.Errorf("%s: got %v", c.name, err)
		}
	}
}
