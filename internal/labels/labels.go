// Package labels is how berth selects objects by label, the one rule every
// listing (containers, networks, volumes, events) applies.
package labels

// Match reports whether have carries every label of want; a wanted label
// with an empty value matches any value (--filter label=KEY).
func Match(have, want map[string]string) bool {
	for k, v := range want {
		got, ok := have[k]
		if !ok || (v != "" && got != v) {
			return false
		}
	}
	return true
}
