package labels

import "testing"

func TestMatch(t *testing.T) {
	have := map[string]string{"project": "app", "service": "web"}
	for _, tc := range []struct {
		want map[string]string
		ok   bool
	}{
		{nil, true},
		{map[string]string{"project": "app"}, true},
		{map[string]string{"project": ""}, true},
		{map[string]string{"project": "other"}, false},
		{map[string]string{"missing": ""}, false},
		{map[string]string{"project": "app", "service": "web"}, true},
	} {
		if got := Match(have, tc.want); got != tc.ok {
			t.Errorf("Match(%v) = %v, want %v", tc.want, got, tc.ok)
		}
	}
}
