package main

import "github.com/spf13/cobra"

// examples are what `berth help COMMAND` shows for the commands that do
// not carry their own, in one place so they read as a set.
var examples = map[string]string{
	"berth config": `  berth config                       # the project as docker compose config prints it
  berth config --services            # one service name a line
  berth config --hash '*'            # each service's config hash
  berth -f a.yaml -f b.yaml config   # several files merged`,
	"berth exec": `  berth exec web sh                  # a shell in web's first replica
  berth exec -T --index 2 web ls /   # without a terminal, in replica 2
  berth exec -e DEBUG=1 -u nobody web env`,
	"berth run": `  berth run --rm web sh              # a one-off container of web, removed after
  berth run --rm -e X=1 web env
  berth run --service-ports web      # with web's published ports`,
	"berth top":     "  berth top web                      # the processes of web's containers",
	"berth stats":   "  berth stats --no-stream            # one sample of every container's usage",
	"berth cp":      "  berth cp web:/etc/hosts ./hosts    # from a service's container\n  berth cp ./config.ini web:/app/   # to it",
	"berth version": "  berth version\n  berth version --format json",
	"berth daemon":  "  berth daemon                       # in the foreground, e.g. under systemd\n  berth daemon --root /srv/berth --host unix:///run/berth-srv.sock",
	"berth login":   "  berth login localhost:5000\n  echo $TOKEN | berth login -u ci --password-stdin registry.example.com",
	"berth logout":  "  berth logout localhost:5000",

	"berth watch ls":   "  berth watch ls\n  berth watch ls --format json",
	"berth watch stop": "  berth watch stop               # the project of the current directory\n  berth watch stop myapp",

	"berth image history": "  berth image history busybox",
	"berth image import":  "  berth image import rootfs.tar myimage:1\n  berth image import --change 'CMD [\"sh\"]' - busybox < rootfs.tar",
	"berth image inspect": "  berth image inspect busybox",
	"berth image load":    "  berth image load -i busybox.tar\n  skopeo copy docker://... docker-archive:/dev/stdout | berth image load",
	"berth image ls":      "  berth image ls\n  berth image ls --format json",
	"berth image prune":   "  berth image prune                  # images without a name\n  berth image prune -a --force       # every image no container uses",
	"berth image pull":    "  berth image pull localhost:5000/app:1",
	"berth image push":    "  berth image push localhost:5000/app:1",
	"berth image rm":      "  berth image rm busybox",
	"berth image save":    "  berth image save -o busybox.tar busybox\n  berth image save --format oci-archive -o app.tar app:1",
	"berth image tag":     "  berth image tag app:1 localhost:5000/app:1",

	"berth container attach":  "  berth container attach web-1",
	"berth container create":  "  berth container create --name box busybox sleep 1000",
	"berth container diff":    "  berth container diff box         # A added, C changed, D deleted",
	"berth container commit":  "  berth container commit -m 'with tools' box mybox:1",
	"berth container exec":    "  berth container exec -it box sh\n  berth container exec box cat /etc/hostname",
	"berth container inspect": "  berth container inspect box",
	"berth container kill":    "  berth container kill box\n  berth container kill -s HUP box",
	"berth container logs":    "  berth container logs -f --tail 10 box",
	"berth container ls":      "  berth container ls -a\n  berth container ls --format json",
	"berth container rm":      "  berth container rm -f box",
	"berth container run":     "  berth container run --rm busybox echo hi\n  berth container run -it --rm busybox sh",
	"berth container start":   "  berth container start box",
	"berth container stats":   "  berth container stats --no-stream",
	"berth container stop":    "  berth container stop -t 2 box",
	"berth container top":     "  berth container top box",
	"berth container wait":    "  berth container wait box          # prints its exit code",
	"berth container pause":   "  berth container pause box",
	"berth container unpause": "  berth container unpause box",
	"berth container rename":  "  berth container rename box crate",

	"berth network create":  "  berth network create --subnet 10.99.0.0/24 backend\n  berth network create --internal private",
	"berth network inspect": "  berth network inspect myapp_default",
	"berth network ls":      "  berth network ls\n  berth network ls --filter label=com.docker.compose.project=myapp",
	"berth network prune":   "  berth network prune",
	"berth network rm":      "  berth network rm backend",

	"berth volume create":  "  berth volume create data\n  berth volume create -o type=none -o o=bind -o device=/srv/data data",
	"berth volume inspect": "  berth volume inspect data",
	"berth volume ls":      "  berth volume ls\n  berth volume ls --format json",
	"berth volume prune":   "  berth volume prune               # anonymous volumes no container uses",
	"berth volume rm":      "  berth volume rm data",

	"berth runtime spec":   "  berth runtime spec --rootfs rootfs > config.json   # a Docker-like default spec",
	"berth runtime create": "  berth runtime create -b ./bundle box",
	"berth runtime start":  "  berth runtime start box",
	"berth runtime run":    "  berth runtime run -b ./bundle box    # create, start and wait, as runc run",
	"berth runtime state":  "  berth runtime state box",
	"berth runtime list":   "  berth runtime list",
	"berth runtime ps":     "  berth runtime ps box",
	"berth runtime kill":   "  berth runtime kill box TERM",
	"berth runtime delete": "  berth runtime delete --force box",
	"berth runtime exec":   "  berth runtime exec box cat /etc/hostname",
	"berth runtime pause":  "  berth runtime pause box",
	"berth runtime resume": "  berth runtime resume box",
}

// applyExamples gives each command without an example its entry above.
func applyExamples(c *cobra.Command) {
	if c.Example == "" {
		c.Example = examples[c.CommandPath()]
	}
	for _, sub := range c.Commands() {
		applyExamples(sub)
	}
}
