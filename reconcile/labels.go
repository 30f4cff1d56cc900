package reconcile

// Labels berth puts on what it creates, the same keys as docker compose so
// that users' tooling and habits (`--filter label=...`) carry over.
const (
	LabelProject     = "com.docker.compose.project"
	LabelService     = "com.docker.compose.service"
	LabelNumber      = "com.docker.compose.container-number"
	LabelConfigHash  = "com.docker.compose.config-hash"
	LabelOneOff      = "com.docker.compose.oneoff"
	LabelImage       = "com.docker.compose.image" // the image ID the container was made from
	LabelWorkingDir  = "com.docker.compose.project.working_dir"
	LabelConfigFiles = "com.docker.compose.project.config_files"
	LabelDependsOn   = "com.docker.compose.depends_on"
	LabelVersion     = "com.docker.compose.version"
	LabelNetwork     = "com.docker.compose.network"
	LabelVolume      = "com.docker.compose.volume"
	// LabelConfigFields holds a short hash per hashed field, so that a
	// recreate can say which fields changed ("environment, ports").
	LabelConfigFields = "dev.berth.config-fields"
)
