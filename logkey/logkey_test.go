package logkey

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoKeyIsWrittenOut: no log call outside the tests names an attribute with a string of its
// own: every key is one of these constants. (It looks at the calls by their shape: a method
// Info, Warn, Error or Debug with a message, Log with a context, level and message, or With,
// followed by key-value pairs.)
func TestNoKeyIsWrittenOut(t *testing.T) {
	first := map[string]int{"Info": 1, "Warn": 1, "Error": 1, "Debug": 1, "Log": 3, "With": 0}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "internal") && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			from, ok := first[sel.Sel.Name]
			if !ok {
				return true
			}
			for i := from; i < len(call.Args); i += 2 {
				lit, ok := call.Args[i].(*ast.BasicLit)
				if ok && lit.Kind == token.STRING && !strings.ContainsAny(lit.Value, " :") {
					t.Errorf("%s: log key %s written out: use a logkey constant", fset.Position(lit.Pos()), lit.Value)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
