package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strings"

	"github.com/berth-dev/berth/manifest"
)

// notRecreating are the service fields outside the config hash (see
// manifest's hash allow-list); a change to them never names a recreate.
var notRecreating = map[string]bool{
	"name": true, "replicas": true, "build": true, "pull_policy": true,
	"depends_on": true, "develop": true, "profiles": true, "config_hash": true,
}

// FieldHashes returns a short hash per field of s, keyed by the field's
// Compose name, so that a later plan can say which fields changed.
func FieldHashes(s manifest.Service) map[string]string {
	b, err := json.Marshal(s)
	if err != nil {
		return nil
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) != nil {
		return nil
	}
	out := make(map[string]string, len(fields))
	for k, v := range fields {
		if notRecreating[k] {
			continue
		}
		sum := sha256.Sum256(v)
		out[k] = hex.EncodeToString(sum[:4])
	}
	return out
}

// encodeFields renders field hashes as a label value: "k=h,k=h", sorted.
func encodeFields(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

// decodeFields parses encodeFields' output.
func decodeFields(s string) map[string]string {
	if s == "" {
		return nil
	}
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(part, "="); ok {
			out[k] = v
		}
	}
	return out
}
