package failpoint

import (
	"errors"
	"testing"
)

func TestLookup(t *testing.T) {
	spec := "runtime/after-pivot=panic; runtime/after-clone=sleep(10ms)"
	if a, ok := Lookup(spec, "runtime/after-clone"); !ok || a != "sleep(10ms)" {
		t.Fatalf("got %q %v", a, ok)
	}
	if _, ok := Lookup(spec, "runtime/before-pivot"); ok {
		t.Fatal("an unarmed failpoint was found")
	}
}

func TestActions(t *testing.T) {
	var fe *Error
	if err := run("x", "error"); !errors.As(err, &fe) || fe.Name != "x" {
		t.Fatalf("error action: %v", err)
	}
	if err := run("x", "sleep(1ms)"); err != nil {
		t.Fatalf("sleep action: %v", err)
	}
	if err := run("x", "sleep(soon)"); err == nil {
		t.Fatal("a bad duration was accepted")
	}
	if err := run("x", "explode"); err == nil {
		t.Fatal("an unknown action was accepted")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("panic action did not panic")
		}
	}()
	run("x", "panic")
}

func TestInjectWithNothingArmed(t *testing.T) {
	t.Setenv(Env, "")
	if err := Inject("runtime/after-pivot"); err != nil {
		t.Fatal(err)
	}
	t.Setenv(Env, "runtime/after-pivot=error")
	if err := Inject("runtime/after-pivot"); err == nil {
		t.Fatal("armed failpoint did nothing")
	}
}
