// Command sizes keeps the code a newcomer can hold in their head: it lists
// every non-test Go file over 400 lines and every function over 80 lines
// (function literals count inside their function) in the directories it
// is given, and exits 1 if there is any. Generated files (a "Code
// generated ... DO NOT EDIT." line) and tools/ are left out.
package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

const (
	maxFileLines = 400
	maxFuncLines = 80
)

var generated = regexp.MustCompile(`(?m)^// Code generated .* DO NOT EDIT\.$`)

func main() {
	var over []string
	for _, root := range os.Args[1:] {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != root && (d.Name() == "tools" || d.Name() == "bin" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			found, err := check(path)
			over = append(over, found...)
			return err
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "sizes:", err)
			os.Exit(2)
		}
	}
	for _, o := range over {
		fmt.Println(o)
	}
	if len(over) > 0 {
		fmt.Printf("%d over the limits (%d lines a file, %d a function): split them by concern\n", len(over), maxFileLines, maxFuncLines)
		os.Exit(1)
	}
}

// check lists what in one file is over the limits.
func check(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil || generated.Match(data) {
		return nil, err
	}
	var over []string
	if n := bytes.Count(data, []byte("\n")); n > maxFileLines {
		over = append(over, fmt.Sprintf("%s: %d lines", path, n))
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, data, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	for _, decl := range f.Decls {
		if fn, ok := decl.(*ast.FuncDecl); ok {
			if n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1; n > maxFuncLines {
				over = append(over, fmt.Sprintf("%s:%d: func %s: %d lines", path, fset.Position(fn.Pos()).Line, fn.Name.Name, n))
			}
		}
	}
	return over, nil
}
