package odata

import (
	"fmt"
	"strings"
)

const (
	fieldUserID       = "userId"
	fieldConnectionID = "connectionId"
	fieldGroups       = "groups"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tWord
	tString
	tLParen
	tRParen
	tComma
)

type token struct {
	kind tokKind
	text string // the word, or the string's value
	pos  int    // byte offset, for messages
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of filter"
	case tString:
		return fmt.Sprintf("string %q", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

// lex splits s into words, quoted strings (” is a quote inside), parentheses and
// commas. Anything else (numbers, other punctuation) is an error.
func lex(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, token{tRParen, ")", i})
			i++
		case c == ',':
			toks = append(toks, token{tComma, ",", i})
			i++
		case c == '\'':
			start := i
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, fmt.Errorf("%w: string at offset %d is not closed", ErrSyntax, start)
				}
				if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			toks = append(toks, token{tString, b.String(), start})
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_':
			start := i
			for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9' || s[i] == '_' || s[i] == '.' || s[i] == '/') {
				i++
			}
			toks = append(toks, token{tWord, s[start:i], start})
		default:
			what := "character"
			if c >= '0' && c <= '9' || c == '-' {
				what = "number (only strings and null are supported)"
			}
			return nil, fmt.Errorf("%w: unsupported %s at offset %d", ErrSyntax, what, i)
		}
	}
	return toks, nil
}

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	end := 0
	if n := len(p.toks); n > 0 {
		end = p.toks[n-1].pos + 1
	}
	return token{kind: tEOF, pos: end}
}

func (p *parser) next() token {
	t := p.peek()
	if p.i < len(p.toks) {
		p.i++
	}
	return t
}

func (p *parser) errAt(t token, format string, args ...any) error {
	return fmt.Errorf("%w: %s at offset %d", ErrSyntax, fmt.Sprintf(format, args...), t.pos)
}

func (p *parser) isWord(w string) bool {
	t := p.peek()
	return t.kind == tWord && t.text == w
}

func (p *parser) or(depth int) (node, error) {
	l, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	for p.isWord("or") {
		p.next()
		r, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		l = &orNode{l, r}
	}
	return l, nil
}

func (p *parser) and(depth int) (node, error) {
	l, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	for p.isWord("and") {
		p.next()
		r, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		l = &andNode{l, r}
	}
	return l, nil
}

func (p *parser) unary(depth int) (node, error) {
	if depth >= MaxDepth {
		return nil, p.errAt(p.peek(), "nested deeper than %d", MaxDepth)
	}
	if p.isWord("not") {
		p.next()
		x, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &notNode{x}, nil
	}
	return p.primary(depth)
}

// unsupported names the OData operators and functions this subset refuses, for a
// clear message instead of "unexpected word".
var unsupported = map[string]string{
	"gt": "operator", "ge": "operator", "lt": "operator", "le": "operator", "has": "operator",
	"add": "operator", "sub": "operator", "mul": "operator", "div": "operator", "mod": "operator",
	"endswith": "function", "contains": "function", "substringof": "function", "length": "function",
	"indexof": "function", "substring": "function", "tolower": "function", "toupper": "function",
	"trim": "function", "concat": "function", "any": "function", "all": "function",
	"true": "literal", "false": "literal",
}

func (p *parser) primary(depth int) (node, error) {
	t := p.peek()
	switch {
	case t.kind == tLParen:
		p.next()
		x, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, p.errAt(c, "expected ')' but found %s", c)
		}
		return x, nil
	case t.kind == tWord && t.text == "startswith":
		return p.startsWith()
	case t.kind == tWord && unsupported[t.text] != "":
		return nil, p.errAt(t, "%s %q is not supported", unsupported[t.text], t.text)
	}
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	op := p.next()
	switch {
	case op.kind == tWord && (op.text == "eq" || op.text == "ne"):
	case op.kind == tWord && op.text == "in":
		if l.field != "" || l.isNull {
			return nil, p.errAt(t, "the left side of 'in' must be a string (a group name)")
		}
		if g := p.next(); g.kind != tWord || g.text != fieldGroups {
			return nil, p.errAt(g, "only \"'<group>' in groups\" is supported, found %s", g)
		}
		return &inGroupsNode{group: l.value}, nil
	case op.kind == tWord && unsupported[op.text] != "":
		return nil, p.errAt(op, "%s %q is not supported", unsupported[op.text], op.text)
	default:
		return nil, p.errAt(op, "expected eq, ne or in but found %s", op)
	}
	r, err := p.operand()
	if err != nil {
		return nil, err
	}
	return &cmpNode{l: l, r: r, neg: op.text == "ne"}, nil
}

func (p *parser) operand() (operand, error) {
	t := p.next()
	switch {
	case t.kind == tString:
		return operand{value: t.text}, nil
	case t.kind == tWord && t.text == "null":
		return operand{isNull: true}, nil
	case t.kind == tWord && (t.text == fieldUserID || t.text == fieldConnectionID):
		return operand{field: t.text}, nil
	case t.kind == tWord && t.text == fieldGroups:
		return operand{}, p.errAt(t, "groups can only be used as \"'<group>' in groups\"")
	case t.kind == tWord && unsupported[t.text] != "":
		return operand{}, p.errAt(t, "%s %q is not supported", unsupported[t.text], t.text)
	case t.kind == tWord:
		return operand{}, p.errAt(t, "unknown field %q (userId, connectionId and groups are supported)", t.text)
	}
	return operand{}, p.errAt(t, "expected a field, a string or null but found %s", t)
}

// startsWith parses startswith(field, 'prefix').
func (p *parser) startsWith() (node, error) {
	p.next()
	if t := p.next(); t.kind != tLParen {
		return nil, p.errAt(t, "expected '(' after startswith")
	}
	f := p.next()
	if f.kind != tWord || (f.text != fieldUserID && f.text != fieldConnectionID) {
		return nil, p.errAt(f, "startswith takes userId or connectionId first, found %s", f)
	}
	if t := p.next(); t.kind != tComma {
		return nil, p.errAt(t, "expected ',' in startswith")
	}
	s := p.next()
	if s.kind != tString {
		return nil, p.errAt(s, "startswith takes a string second, found %s", s)
	}
	if t := p.next(); t.kind != tRParen {
		return nil, p.errAt(t, "expected ')' after startswith's arguments")
	}
	return &startsWithNode{field: f.text, prefix: s.text}, nil
}
