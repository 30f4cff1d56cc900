package image

import "testing"

// FuzzParseReference checks that normalising is stable: a normalised
// reference and its familiar form both parse back to the same reference.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"busybox", "library/busybox:1", "localhost:5000/a/b:c", "x@sha256:" + hex64(), "docker.io/u/app", "UP", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReference(s)
		if err != nil {
			return
		}
		for _, form := range []string{r.String(), r.Familiar()} {
			again, err := ParseReference(form)
			if err != nil || again != r {
				t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, r, form, again, err)
			}
		}
	})
}
