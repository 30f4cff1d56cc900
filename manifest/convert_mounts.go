package manifest

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/go-units"
)

// ports converts ports:. compose-go has already split short syntax into
// one entry per container port; a host range stays a range.
func (c *converter) ports(ports []types.ServicePortConfig) []Port {
	var out []Port
	for i, p := range ports {
		key := fmt.Sprintf("ports.%d", i)
		port := Port{HostIP: p.HostIP, Protocol: p.Protocol, Name: p.Name, AppProtocol: p.AppProtocol}
		if port.Protocol == "" {
			port.Protocol = "tcp"
		}
		if port.Protocol != "tcp" && port.Protocol != "udp" {
			c.refuse(key, "protocol %q is not supported: berth publishes tcp and udp", port.Protocol)
			continue
		}
		if p.Target == 0 || p.Target > 65535 {
			c.refuse(key, "invalid container port %d", p.Target)
			continue
		}
		port.Target = uint16(p.Target)
		if p.Published != "" {
			start, end, err := portRange(p.Published)
			if err != nil {
				c.refuse(key, "invalid published port %q: %v", p.Published, err)
				continue
			}
			port.PublishedStart, port.PublishedEnd = start, end
		}
		out = append(out, port)
	}
	return out
}

// portRange parses "8080" or "8000-8010".
func portRange(s string) (start, end uint16, err error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return 0, 0, err
	}
	b := a
	if isRange {
		if b, err = strconv.ParseUint(hi, 10, 16); err != nil {
			return 0, 0, err
		}
	}
	if b < a {
		return 0, 0, fmt.Errorf("range ends before it starts")
	}
	return uint16(a), uint16(b), nil
}

// expose converts expose: ("80", "53/udp", "8000-8010"), one entry per port.
func (c *converter) expose(list types.StringOrNumberList) []ContainerPort {
	var out []ContainerPort
	for i, e := range list {
		spec, proto, ok := strings.Cut(e, "/")
		if !ok {
			proto = "tcp"
		}
		start, end, err := portRange(spec)
		if err != nil || start == 0 || (proto != "tcp" && proto != "udp") {
			c.refuse(fmt.Sprintf("expose.%d", i), "invalid exposed port %q", e)
			continue
		}
		for p := int(start); p <= int(end); p++ {
			out = append(out, ContainerPort{Port: uint16(p), Protocol: proto})
		}
	}
	return out
}

// volumes converts volumes:. Named volumes get their engine name.
func (c *converter) volumes(vols []types.ServiceVolumeConfig) []Mount {
	var out []Mount
	for i, v := range vols {
		key := fmt.Sprintf("volumes.%d", i)
		m := Mount{Type: MountType(v.Type), Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
		switch v.Type {
		case types.VolumeTypeBind:
			if v.Bind != nil {
				m.CreateHostPath = bool(v.Bind.CreateHostPath)
				m.Propagation = v.Bind.Propagation
				m.SELinux = v.Bind.SELinux
				if v.Bind.Recursive != "" && v.Bind.Recursive != "enabled" {
					c.refuse(key+".bind.recursive", "recursive %q is not supported yet", v.Bind.Recursive)
				}
			}
		case types.VolumeTypeVolume:
			if v.Source != "" {
				m.Source = v.Source
				if vol, ok := c.cp.Volumes[v.Source]; ok && vol.Name != "" {
					m.Source = vol.Name
				}
			}
			if v.Volume != nil {
				m.NoCopy = v.Volume.NoCopy
				m.Subpath = v.Volume.Subpath
			}
		case types.VolumeTypeTmpfs:
			if v.Tmpfs != nil {
				m.TmpfsSize = int64(v.Tmpfs.Size)
				m.TmpfsMode = v.Tmpfs.Mode
			}
		default:
			c.refuse(key+".type", "volume type %q is not supported", v.Type)
			continue
		}
		out = append(out, m)
	}
	return out
}

// tmpfs converts tmpfs: entries, PATH[:OPTIONS] as docker run --tmpfs
// takes them.
func (c *converter) tmpfs(list types.StringList) []Mount {
	var out []Mount
	for i, e := range list {
		target, opts, _ := strings.Cut(e, ":")
		m := Mount{Type: MountTmpfs, Target: path.Clean(target)}
		for _, o := range strings.Split(opts, ",") {
			k, v, _ := strings.Cut(o, "=")
			switch k {
			case "":
			case "size":
				n, err := units.RAMInBytes(v)
				if err != nil {
					c.refuse(fmt.Sprintf("tmpfs.%d", i), "invalid size %q", v)
				}
				m.TmpfsSize = n
			case "mode":
				n, err := strconv.ParseUint(v, 8, 32)
				if err != nil {
					c.refuse(fmt.Sprintf("tmpfs.%d", i), "invalid mode %q", v)
				}
				m.TmpfsMode = uint32(n)
			case "ro":
				m.ReadOnly = true
			default:
				m.TmpfsOptions = append(m.TmpfsOptions, o)
			}
		}
		out = append(out, m)
	}
	return out
}

// files converts secrets: or configs: of a service into the files the
// replicas read.
func (c *converter) files(kind string, refs []types.FileReferenceConfig) []FileMount {
	var out []FileMount
	for i, ref := range refs {
		key := fmt.Sprintf("%ss.%d", kind, i)
		var def types.FileObjectConfig
		var ok bool
		if kind == "secret" {
			var s types.SecretConfig
			s, ok = c.cp.Secrets[ref.Source]
			def = types.FileObjectConfig(s)
		} else {
			var s types.ConfigObjConfig
			s, ok = c.cp.Configs[ref.Source]
			def = types.FileObjectConfig(s)
		}
		if !ok {
			c.refuse(key, "undefined %s %q", kind, ref.Source)
			continue
		}
		f := FileMount{Kind: kind, Name: ref.Source, Source: def.File, Content: def.Content, UID: ref.UID, GID: ref.GID}
		if def.Environment != "" {
			f.Content = c.cp.Environment[def.Environment]
		}
		if bool(def.External) {
			c.refuse(key, "external %ss are swarm's: not supported", kind)
			continue
		}
		if def.Driver != "" || def.TemplateDriver != "" {
			c.refuse(key, "%s drivers are not supported", kind)
			continue
		}
		f.Target = ref.Target
		switch {
		case f.Target == "" && kind == "secret":
			f.Target = "/run/secrets/" + ref.Source
		case f.Target == "":
			f.Target = "/" + ref.Source
		case !path.IsAbs(f.Target) && kind == "secret":
			f.Target = "/run/secrets/" + f.Target
		case !path.IsAbs(f.Target):
			f.Target = "/" + f.Target
		}
		if ref.Mode != nil {
			m := int64(*ref.Mode)
			if m < 0 || m > 0o7777 {
				c.refuse(key+".mode", "%o is not a file mode", m)
				continue
			}
			f.Mode = &m
		}
		// Files of content: and environment: get these owners (a name could
		// not be looked up before the container's /etc/passwd exists); a
		// bind-mounted file keeps its own, as with docker compose.
		if f.Source == "" && !numeric(f.UID) {
			c.refuse(key+".uid", "uid %q is not a number", f.UID)
			continue
		}
		if f.Source == "" && !numeric(f.GID) {
			c.refuse(key+".gid", "gid %q is not a number", f.GID)
			continue
		}
		out = append(out, f)
	}
	return out
}

// numeric says whether a Compose uid or gid is empty or a number.
func numeric(id string) bool {
	if id == "" {
		return true
	}
	_, err := strconv.ParseUint(id, 10, 31)
	return err == nil
}

// buildSecrets resolves build.secrets against the top-level secrets.
func (c *converter) buildSecrets(refs []types.ServiceSecretConfig) []BuildSecret {
	var out []BuildSecret
	for i, ref := range refs {
		key := fmt.Sprintf("build.secrets.%d", i)
		def, ok := c.cp.Secrets[ref.Source]
		if !ok {
			c.refuse(key, "undefined secret %q", ref.Source)
			continue
		}
		if bool(def.External) || def.Driver != "" {
			c.refuse(key, "secret %q: external and driver secrets are swarm's: not supported", ref.Source)
			continue
		}
		id := ref.Source
		if ref.Target != "" {
			id = ref.Target
		}
		b := BuildSecret{ID: id, File: def.File, Content: def.Content}
		if def.Environment != "" {
			b.Content = c.cp.Environment[def.Environment]
		}
		out = append(out, b)
	}
	return out
}
