package build

import (
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

func TestDockerfileErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct {
		name, dockerfile, want string
	}{
		{"unknown instruction", "FROM busybox\nRUN true\nFORM x\n", "Dockerfile:3: unknown instruction: FORM"},
		{"bad JSON flag", "FROM busybox\n\nCOPY --chown a b\n", "Dockerfile:3:"},
		{"no FROM", "RUN true\n", "Dockerfile:1:"},
		{"empty", "# nothing\n", "Dockerfile:1: file with no instructions"},
		{"unterminated heredoc", "FROM busybox\nRUN <<EOF\necho hi\n", "Dockerfile:"},
		{"bad escape directive", "# escape=x\nFROM busybox\n", "Dockerfile:"},
		{"HEALTHCHECK without CMD", "FROM busybox\nHEALTHCHECK --interval=1s\n", "Dockerfile:2:"},
		{"ENV without value", "FROM busybox\nENV\n", "Dockerfile:2:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseDockerfile("Dockerfile", []byte(tc.dockerfile))
			if err == nil {
				t.Fatal("no error")
			}
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("error %v is not an invalid argument", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestUnknownInstructionSuggestsTheRightOne(t *testing.T) {
	_, err := parseDockerfile("app.Dockerfile", []byte("FROM busybox\nCOPPY a b\n"))
	if err == nil || !strings.Contains(err.Error(), "app.Dockerfile:2") || !strings.Contains(err.Error(), "COPY") {
		t.Fatalf("error %v: want the file, the line and a suggestion", err)
	}
}

func TestTargetStage(t *testing.T) {
	df, err := parseDockerfile("Dockerfile", []byte("FROM busybox AS build\nRUN true\nFROM scratch AS final\nCOPY --from=build /x /x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if i, err := df.targetStage(""); err != nil || i != 1 {
		t.Errorf("default target %d, %v: want the last stage", i, err)
	}
	if i, err := df.targetStage("BUILD"); err != nil || i != 0 {
		t.Errorf("target BUILD %d, %v: want stage 0 (names are case insensitive)", i, err)
	}
	if _, err := df.targetStage("nope"); err == nil || !strings.Contains(err.Error(), `"nope" could not be found`) || !strings.Contains(err.Error(), "build, final") {
		t.Errorf("missing target: %v", err)
	}
	if i, ok := df.findStage("0", 1); !ok || i != 0 {
		t.Errorf("stage by number: %d %v", i, ok)
	}
	if _, ok := df.findStage("final", 1); ok {
		t.Error("a stage found a later one by name")
	}
}

func TestMetaArgsTakeBuildArgsAndDefaults(t *testing.T) {
	df, err := parseDockerfile("Dockerfile", []byte("ARG BASE=busy\nARG TAG=${BASE}box\nARG EMPTY\nFROM ${TAG}\n"))
	if err != nil {
		t.Fatal(err)
	}
	lex := shell.NewLex(df.escape)
	args, err := df.evalMetaArgs(lex, map[string]string{"BASE": "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := lex.ProcessWord(df.stages[0].BaseName, argEnv(args))
	if err != nil || got != "tinybox" {
		t.Errorf("FROM expands to %q (%v), want tinybox", got, err)
	}
	for _, a := range args {
		if a.name == "EMPTY" && a.hasValue {
			t.Error("an ARG without a default or build arg has a value")
		}
		if a.name == "TARGETOS" && a.value != "linux" {
			t.Errorf("TARGETOS is %q", a.value)
		}
	}
}

func TestExposedPorts(t *testing.T) {
	for in, want := range map[string]string{
		"80":             "80/tcp",
		"53/UDP":         "53/udp",
		"8000-8002/tcp":  "8000/tcp 8001/tcp 8002/tcp",
		"9000-9000/sctp": "9000/sctp",
	} {
		got, err := exposedPorts(in)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("EXPOSE %s: %v %v, want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"0", "http", "80/icmp", "90-80", "70000"} {
		if _, err := exposedPorts(bad); err == nil {
			t.Errorf("EXPOSE %s: no error", bad)
		}
	}
}

func TestChainKeyTellsPartsApart(t *testing.T) {
	if chainKey("p", "ab", "c") == chainKey("p", "a", "bc") {
		t.Error("parts split differently hash alike")
	}
	if chainKey("p", "x") == chainKey("q", "x") {
		t.Error("the parent is not part of the key")
	}
	if a, b := chainKey("p", "x"), chainKey("p", "x"); a != b {
		t.Error("the key is not stable")
	}
}

func TestSetEnvReplaces(t *testing.T) {
	env := setEnv([]string{"A=1", "B=2"}, "A", "3")
	if strings.Join(env, ",") != "B=2,A=3" {
		t.Errorf("env %v", env)
	}
}

func TestRunEnvAndHistoryPrefix(t *testing.T) {
	st := &state{args: []argValue{{name: "V", value: "1", hasValue: true}, {name: "E", value: "arg", hasValue: true}, {name: "NONE"}}}
	st.config.Env = []string{"PATH=/bin", "E=env"}
	env := st.runEnv(map[string]string{"http_proxy": "http://proxy:3128", "OTHER": "x"})
	joined := strings.Join(env, ",")
	if joined != "PATH=/bin,E=env,V=1,http_proxy=http://proxy:3128" {
		t.Errorf("RUN env %s", joined)
	}
	if p := st.argsPrefix(); p != "|2 V=1 E=env " {
		t.Errorf("history prefix %q", p)
	}
}

func FuzzDockerfile(f *testing.F) {
	for _, s := range []string{
		"FROM busybox\nRUN echo hi\n",
		"ARG A=1\nFROM ${A}\nCOPY --from=0 a b\n",
		"FROM scratch\nCOPY <<EOF /x\nhello\nEOF\n",
		"# escape=`\nFROM x\nRUN a `\n  b\n",
		"FROM a AS b\nONBUILD RUN x\nHEALTHCHECK CMD true\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		df, err := parseDockerfile("Dockerfile", []byte(s))
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("error %v is not an invalid argument", err)
			}
			return
		}
		if len(df.stages) == 0 {
			t.Fatal("a parsed Dockerfile has no stage")
		}
		lex := shell.NewLex(df.escape)
		if _, err := df.evalMetaArgs(lex, nil); err != nil && !errdefs.IsInvalidArgument(err) {
			t.Fatalf("meta args: %v", err)
		}
	})
}
