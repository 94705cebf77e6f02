package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
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

// Each service's Dockerfile builds: its build stage is played here the
// way docker would, in an empty directory holding only what its COPY
// lines copy from the repository root, with its ENV (GOWORK=off), its RUN
// lines (cache mounts aside) and the same Go; and its runtime stage is
// distroless, nonroot, and runs the binary the build stage made.
func TestDockerfilesBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every service")
	}
	root := deploytest.Root(t)
	for _, svc := range []string{"frontend", "matcher", "allocator", "game"} {
		t.Run(svc, func(t *testing.T) {
			ins := parseDockerfile(t, filepath.Join(root, "services", svc, "Dockerfile"))
			ctx := t.TempDir()
			work, out := ctx, filepath.Join(ctx, "out")
			environ := os.Environ()
			stage := 0
			var built, runtime, entrypoint, user string
			for _, in := range ins {
				switch in.cmd {
				case "ARG":
				case "FROM":
					stage++
					if stage == 2 {
						runtime = in.args
					} else if !strings.HasPrefix(in.args, "golang:") || !strings.HasSuffix(in.args, "AS build") {
						t.Errorf("build stage FROM %q", in.args)
					}
				case "ENV":
					environ = append(environ, strings.Fields(in.args)...)
				case "WORKDIR":
					work = filepath.Join(ctx, in.args)
					if err := os.MkdirAll(work, 0o755); err != nil {
						t.Fatal(err)
					}
				case "COPY":
					f := strings.Fields(in.args)
					if strings.HasPrefix(f[0], "--from=build") {
						if f[1] != "/out/"+svc {
							t.Errorf("runtime copies %s", f[1])
						}
						built = f[2]
						continue
					}
					dest := f[len(f)-1]
					for _, src := range f[:len(f)-1] {
						target := filepath.Join(work, dest)
						if !strings.HasSuffix(dest, "/") {
							t.Fatalf("COPY destination %q: want a directory", dest)
						}
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
			if runtime != "gcr.io/distroless/static-debian12:nonroot" || user != "nonroot:nonroot" {
				t.Errorf("runtime %q as %q", runtime, user)
			}
			if entrypoint != `["`+built+`"]` {
				t.Errorf("ENTRYPOINT %s, binary at %s", entrypoint, built)
			}
			if !strings.Contains(strings.Join(environ, " "), "GOWORK=off") {
				t.Error("the build does not set GOWORK=off")
			}
		})
	}
}
