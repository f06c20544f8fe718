package consulmodel

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// fields gives the values of a selector of one item ("Node.Node", "ServiceMeta.wakes"): one
// for a field, the elements of a list (tags), ok false for a selector the item does not have.
type fields func(selector string) (values []string, ok bool)

// filter is a parsed ?filter expression: the subset of Consul's filter language the model
// knows: `Selector == "v"`, `!=`, `"v" in Selector`, `"v" not in Selector`, `Selector is
// empty`, `Selector is not empty`, joined with `and`, `or`, `not` and parentheses.
type filter func(fields) bool

// parseFilter parses an expression, checking its selectors against one item's fields: an
// error (Consul answers 400) for what the model does not know.
func parseFilter(expr string, check fields) (filter, error) {
	if strings.TrimSpace(expr) == "" {
		return func(fields) bool { return true }, nil
	}
	p := &filterParser{toks: tokenize(expr), check: check}
	f, err := p.or()
	if err == nil && p.pos < len(p.toks) {
		err = fmt.Errorf("unexpected %q", p.toks[p.pos])
	}
	if err != nil {
		return nil, fmt.Errorf("Failed to create boolean expression evaluator: %v", err)
	}
	return f, nil
}

func tokenize(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		r := rune(s[i])
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '"' || r == '`':
			j := i + 1
			for j < len(s) && s[j] != s[i] {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			toks = append(toks, s[i:min(j+1, len(s))])
			i = j + 1
		case r == '(' || r == ')':
			toks = append(toks, string(r))
			i++
		case r == '=' || r == '!':
			j := i + 1
			if j < len(s) && s[j] == '=' {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		default:
			j := i
			for j < len(s) && !unicode.IsSpace(rune(s[j])) && !strings.ContainsRune("()=!\"`", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

type filterParser struct {
	toks  []string
	pos   int
	check fields
}

func (p *filterParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *filterParser) take() string { t := p.peek(); p.pos++; return t }

func (p *filterParser) or() (filter, error) {
	left, err := p.and()
	for err == nil && p.peek() == "or" {
		p.take()
		var right filter
		if right, err = p.and(); err == nil {
			l := left
			left = func(f fields) bool { return l(f) || right(f) }
		}
	}
	return left, err
}

func (p *filterParser) and() (filter, error) {
	left, err := p.unary()
	for err == nil && p.peek() == "and" {
		p.take()
		var right filter
		if right, err = p.unary(); err == nil {
			l := left
			left = func(f fields) bool { return l(f) && right(f) }
		}
	}
	return left, err
}

func (p *filterParser) unary() (filter, error) {
	switch p.peek() {
	case "not":
		p.take()
		f, err := p.unary()
		if err != nil {
			return nil, err
		}
		return func(x fields) bool { return !f(x) }, nil
	case "(":
		p.take()
		f, err := p.or()
		if err == nil && p.take() != ")" {
			err = fmt.Errorf("missing )")
		}
		return f, err
	}
	return p.match()
}

func isValue(tok string) bool {
	return strings.HasPrefix(tok, `"`) || strings.HasPrefix(tok, "`")
}

func unquote(tok string) (string, error) {
	if strings.HasPrefix(tok, "`") {
		return strings.Trim(tok, "`"), nil
	}
	return strconv.Unquote(tok)
}

// selector checks that sel is a selector of the items.
func (p *filterParser) selector(sel string) error {
	if _, ok := p.check(sel); !ok {
		return fmt.Errorf("Selector %q is not valid", sel)
	}
	return nil
}

func (p *filterParser) match() (filter, error) {
	first := p.take()
	if isValue(first) {
		v, err := unquote(first)
		if err != nil {
			return nil, err
		}
		negate := false
		if p.peek() == "not" {
			p.take()
			negate = true
		}
		if op := p.take(); op != "in" && op != "contains" {
			return nil, fmt.Errorf("unexpected %q after a value", op)
		}
		sel := p.take()
		if err := p.selector(sel); err != nil {
			return nil, err
		}
		return func(f fields) bool { vals, _ := f(sel); return slices.Contains(vals, v) != negate }, nil
	}
	sel := first
	if err := p.selector(sel); err != nil {
		return nil, err
	}
	switch op := p.take(); op {
	case "==", "!=":
		v, err := unquote(p.take())
		if err != nil {
			return nil, err
		}
		return func(f fields) bool {
			vals, _ := f(sel)
			got := ""
			if len(vals) > 0 {
				got = vals[0]
			}
			return (got == v) == (op == "==")
		}, nil
	case "is":
		negate := p.peek() == "not"
		if negate {
			p.take()
		}
		if p.take() != "empty" {
			return nil, fmt.Errorf("expected empty")
		}
		return func(f fields) bool {
			vals, _ := f(sel)
			return (len(vals) == 0 || len(vals) == 1 && vals[0] == "") != negate
		}, nil
	case "contains":
		v, err := unquote(p.take())
		if err != nil {
			return nil, err
		}
		return func(f fields) bool { vals, _ := f(sel); return slices.Contains(vals, v) }, nil
	default:
		return nil, fmt.Errorf("unexpected %q after selector %s", op, sel)
	}
}

// mapField reads "Prefix.key" from a map: a missing key is the empty string.
func mapField(sel, prefix string, m map[string]string) ([]string, bool) {
	k, ok := strings.CutPrefix(sel, prefix+".")
	if !ok {
		return nil, false
	}
	return []string{m[k]}, true
}
