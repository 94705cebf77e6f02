package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string
	args string
}

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if more, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// stage is one FROM of a Dockerfile: its base, its name (AS) and its
// instructions.
type stage struct {
	from, name string
	ins        []instruction
}

func stages(ins []instruction) []stage {
	var out []stage
	for _, in := range ins {
		switch {
		case in.cmd == "FROM":
			from, name, _ := strings.Cut(in.args, " AS ")
			out = append(out, stage{from: strings.TrimSpace(from), name: strings.TrimSpace(name)})
		case len(out) > 0:
			out[len(out)-1].ins = append(out[len(out)-1].ins, in)
		}
	}
	return out
}

// The Dockerfile builds every service: its build stage is played here the
// way docker would, in an empty directory holding only what its COPY
// lines copy from the repository root, with its ENV (GOWORK=off), its RUN
// lines (cache mounts aside) and the same Go; and each service's target
// stage is distroless, nonroot, and runs the binary the build stage made
// for it.
func TestDockerfilesBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every service")
	}
	root := deploytest.Root(t)
	all := stages(parseDockerfile(t, filepath.Join(root, "Dockerfile")))
	if len(all) == 0 || all[0].name != "build" || !strings.HasPrefix(all[0].from, "golang:") {
		t.Fatalf("the first stage is not the Go build stage: %+v", all)
	}
	out := playBuild(t, root, all[0])
	targets := map[string]stage{}
	for _, st := range all[1:] {
		targets[st.name] = st
	}
	for _, svc := range []string{"frontend", "matcher", "allocator", "game"} {
		t.Run(svc, func(t *testing.T) {
			st, ok := targets[svc]
			if !ok {
				t.Fatalf("no target %q", svc)
			}
			var built, entrypoint, user string
			from, ins := st.from, st.ins
			if base, ok := targets[from]; ok { // FROM a stage of this file
				from, ins = base.from, append(slices.Clone(base.ins), ins...)
			}
			for _, in := range ins {
				switch in.cmd {
				case "COPY":
					f := strings.Fields(in.args)
					if len(f) != 3 || f[0] != "--from=build" || f[1] != "/out/"+svc {
						t.Errorf("runtime copies %s", in.args)
						continue
					}
					built = f[2]
				case "USER":
					user = in.args
				case "ENTRYPOINT":
					entrypoint = in.args
				case "EXPOSE":
				default:
					t.Errorf("unexpected instruction %s", in.cmd)
				}
			}
			if _, err := os.Stat(filepath.Join(out, svc)); err != nil {
				t.Errorf("the build stage made no binary: %v", err)
			}
			if from != "gcr.io/distroless/static-debian12:nonroot" || user != "nonroot:nonroot" {
				t.Errorf("runtime %q as %q", from, user)
			}
			if entrypoint != `["`+built+`"]` {
				t.Errorf("ENTRYPOINT %s, binary at %s", entrypoint, built)
			}
		})
	}
}

// playBuild plays the build stage in an empty directory and returns where
// its /out/ went.
func playBuild(t *testing.T, root string, st stage) string {
	t.Helper()
	ctx := t.TempDir()
	work, out := ctx, filepath.Join(ctx, "out")
	environ := os.Environ()
	for _, in := range st.ins {
		switch in.cmd {
		case "ENV":
			environ = append(environ, strings.Fields(in.args)...)
		case "WORKDIR":
			work = filepath.Join(ctx, in.args)
			if err := os.MkdirAll(work, 0o755); err != nil {
				t.Fatal(err)
			}
		case "COPY":
			copyIn(t, root, work, strings.Fields(in.args))
		case "RUN":
			var words []string
			for _, w := range strings.Fields(in.args) {
				if !strings.HasPrefix(w, "--mount=") {
					words = append(words, strings.ReplaceAll(w, "/out/", out+"/"))
				}
			}
			cmd := exec.Command("sh", "-c", strings.Join(words, " "))
			cmd.Dir, cmd.Env = work, environ
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("RUN %s: %v\n%s", in.args, err, b)
			}
		default:
			t.Errorf("unexpected instruction %s in the build stage", in.cmd)
		}
	}
	if !strings.Contains(strings.Join(environ, " "), "GOWORK=off") {
		t.Error("the build does not set GOWORK=off")
	}
	return out
}

// copyIn plays COPY src... dest from the repository root into work.
func copyIn(t *testing.T, root, work string, f []string) {
	t.Helper()
	dest := f[len(f)-1]
	if !strings.HasSuffix(dest, "/") {
		t.Fatalf("COPY destination %q: want a directory", dest)
	}
	for _, src := range f[:len(f)-1] {
		target := filepath.Join(work, dest)
		if err := os.MkdirAll(target, 0o755); err != nil {
			t.Fatal(err)
		}
		from := filepath.Join(root, src)
		if fi, err := os.Stat(from); err == nil && fi.IsDir() {
			from += "/." // docker copies a directory's contents
		}
		if b, err := exec.Command("cp", "-r", from, target).CombinedOutput(); err != nil {
			t.Fatalf("COPY %s: %v %s", src, err, b)
		}
	}
}
