package container

import (
	"testing"

	"github.com/containerd/errdefs"
)

func TestTransitions(t *testing.T) {
	for _, tc := range []struct {
		from, to Status
		ok       bool
	}{
		{Created, Running, true},
		{Running, Paused, true},
		{Paused, Running, true},
		{Running, Exited, true},
		{Exited, Running, true},
		{Exited, Removing, true},
		{Running, Removing, false},
		{Paused, Removing, false},
		{Removing, Running, false},
		{Created, Paused, false},
	} {
		err := CanBecome(tc.from, tc.to)
		if (err == nil) != tc.ok {
			t.Errorf("%s -> %s: err %v, want ok=%v", tc.from, tc.to, err, tc.ok)
		}
		if err != nil && !errdefs.IsFailedPrecondition(err) {
			t.Errorf("%s -> %s: error %v is not a failed precondition", tc.from, tc.to, err)
		}
	}
}
