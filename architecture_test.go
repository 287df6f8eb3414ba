package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// This test keeps docs/ARCHITECTURE.md true: its tables of dependency
// rules and of operations are read and checked against the code.

const module = "keydesk"

// mdTable returns the rows of the markdown table whose header row starts
// with the given cells, each row as its trimmed cells.
func mdTable(t *testing.T, doc string, header ...string) [][]string {
	t.Helper()
	var rows [][]string
	in := false
	for _, line := range strings.Split(doc, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if in {
				break
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case !in && len(cells) >= len(header) && slices.Equal(cells[:len(header)], header):
			in = true
		case in && strings.HasPrefix(cells[0], "---"):
		case in:
			rows = append(rows, cells)
		}
	}
	if len(rows) == 0 {
		t.Fatalf("docs/ARCHITECTURE.md has no table with the header %v", header)
	}
	return rows
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// goPackages maps each package directory of the module (relative, "." for
// the top) to the imports of its non-test files.
func goPackages(t *testing.T) map[string][]string {
	t.Helper()
	pkgs := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		if _, ok := pkgs[dir]; !ok {
			pkgs[dir] = nil
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !slices.Contains(pkgs[dir], p) {
				pkgs[dir] = append(pkgs[dir], p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func readDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("docs/ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDependencyRulesHold(t *testing.T) {
	doc := readDoc(t)
	allowed := map[string][]string{}
	for _, row := range mdTable(t, doc, "package", "may import") {
		allowed[row[0]] = splitList(row[1])
	}
	only := map[string][]string{}
	for _, row := range mdTable(t, doc, "library", "only in") {
		only[row[0]] = splitList(row[1])
	}
	for dir, imports := range goPackages(t) {
		name := filepath.ToSlash(dir)
		if name == "." {
			name = "main"
		}
		rules, listed := allowed[name]
		if !listed {
			t.Errorf("package %s is not in the dependency rules of docs/ARCHITECTURE.md", name)
		}
		for _, imp := range imports {
			if ours, ok := strings.CutPrefix(imp, module+"/"); ok {
				if listed && !slices.Contains(rules, ours) {
					t.Errorf("%s imports %s, which the dependency rules do not allow", name, ours)
				}
				continue
			}
			for lib, places := range only {
				if (imp == lib || strings.HasPrefix(imp, lib+"/")) && !slices.Contains(places, name) {
					t.Errorf("%s imports %s, which only %v may", name, imp, places)
				}
			}
		}
	}
	for name := range allowed {
		dir := name
		if name == "main" {
			dir = "."
		}
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("the dependency rules name %s, which does not exist", name)
		}
	}
}

// serviceOperations finds the methods of app.Service that take an Actor or
// a SyncRequest: the operations.
func serviceOperations(t *testing.T) map[string]string {
	t.Helper()
	ops := map[string]string{}
	fset := token.NewFileSet()
	files, _ := filepath.Glob("app/*.go")
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || !fn.Name.IsExported() || fn.Name.Name == "Can" {
				continue
			}
			if star, ok := fn.Recv.List[0].Type.(*ast.StarExpr); !ok || star.X.(*ast.Ident).Name != "Service" {
				continue
			}
			for _, p := range fn.Type.Params.List {
				if id, ok := p.Type.(*ast.Ident); ok && (id.Name == "Actor" || id.Name == "SyncRequest") {
					ops[fn.Name.Name] = filepath.ToSlash(path)
				}
			}
		}
	}
	return ops
}

// declares reports whether the Go file declares a function or method name.
func declares(t *testing.T, path, name string) bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return false
	}
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == name {
			return true
		}
	}
	return false
}

func TestOperationsTableIsTrue(t *testing.T) {
	rows := mdTable(t, readDoc(t), "operation", "permission", "application layer", "command line", "console")
	documented := map[string]bool{}
	for _, row := range rows {
		file, fn, ok := strings.Cut(row[2], ": ")
		if !ok {
			t.Errorf("operation %q: the application layer column %q is not \"file: Function\"", row[0], row[2])
			continue
		}
		if !declares(t, file, fn) {
			t.Errorf("operation %q: %s does not declare %s", row[0], file, fn)
		}
		documented[fn] = true
		for _, col := range row[3:] {
			for _, ref := range splitList(col) {
				path, _, _ := strings.Cut(ref, " ")
				if _, err := os.Stat(path); err != nil {
					t.Errorf("operation %q names %s, which does not exist", row[0], path)
				}
			}
		}
	}
	for name, file := range serviceOperations(t) {
		if !documented[name] {
			t.Errorf("the operation Service.%s (%s) is not in docs/ARCHITECTURE.md's table of operations", name, file)
		}
	}
}
