package logkeys

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

var levelMethods = map[string]bool{"Debug": true, "Info": true, "Warn": true, "Error": true}

var attrFuncs = map[string]bool{
	"String": true, "Int": true, "Int64": true, "Uint64": true, "Float64": true, "Bool": true,
	"Duration": true, "Time": true, "Any": true, "Group": true,
}

// keysIn returns every log attribute key written in the non-test Go files under root,
// with where it is used.
func keysIn(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
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
			add := func(e ast.Expr) {
				if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					k, _ := strconv.Unquote(lit.Value)
					out[k] = append(out[k], fset.Position(lit.Pos()).String())
				}
			}
			if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "slog" && attrFuncs[sel.Sel.Name] && len(call.Args) > 0 {
				add(call.Args[0])
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); ok && (pkg.Name == "http" || pkg.Name == "fmt" || pkg.Name == "errors") {
				return true // http.Error(w, text, code) is not a log call
			}
			// logger.Info(msg, "key", value, ...): string literals in key position.
			first := 1
			if sel.Sel.Name == "Log" {
				first = 3 // Log(ctx, level, msg, ...)
			} else if !levelMethods[sel.Sel.Name] {
				return true
			}
			for i := first; i < len(call.Args); i += 2 {
				add(call.Args[i])
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVocabulary(t *testing.T) {
	keys := keysIn(t, filepath.Join("..", ".."))
	var unknown []string
	for k, where := range keys {
		if !slices.Contains(Keys, k) {
			unknown = append(unknown, k+" ("+strings.Join(where, ", ")+")")
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		t.Errorf("log keys outside the vocabulary of package logkeys (add them there, or use the existing name):\n%s", strings.Join(unknown, "\n"))
	}
}
