// Package odata parses and evaluates the OData filter subset that Azure SignalR Service
// and Web PubSub accept to select connections (the filter of POST /api/hubs/{hub}/:execute):
//
//	userId eq 'alice'                  connectionId ne 'c1'            userId eq null
//	'<group>' in groups                startswith(userId, 'listener-')
//	not (...)   ... and ...   ... or ...   ( ... )
//
// Anything else (other fields, operators or functions, lists, numbers) is refused with an
// error that names it, so a caller can answer 400 instead of selecting the wrong
// connections. Keywords and field names are case-sensitive, as in OData.
package odata

import (
	"errors"
	"fmt"
	"strings"
)

// MaxLength bounds a filter's length in bytes, MaxDepth the nesting of not and
// parentheses: a filter is one query parameter, and the parser must not recurse
// without bound on hostile input.
const (
	MaxLength = 4096
	MaxDepth  = 32
)

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("invalid filter")

// Connection is what a filter sees of one connection.
type Connection struct {
	ID     string
	UserID string // "" = anonymous: equals null
	// InGroup reports membership of a group.
	InGroup func(group string) bool
}

// Filter is a parsed filter; nil-safe: a nil *Filter (no filter) matches everything.
type Filter struct{ root node }

// Match reports whether c is selected.
func (f *Filter) Match(c Connection) bool {
	if f == nil || f.root == nil {
		return true
	}
	return f.root.eval(&c)
}

// String is the filter in canonical form; parsing it gives the same filter.
func (f *Filter) String() string {
	if f == nil || f.root == nil {
		return ""
	}
	var b strings.Builder
	f.root.write(&b)
	return b.String()
}

// Parse parses a filter; an empty (or all-space) filter is nil, which matches every
// connection.
func Parse(s string) (*Filter, error) {
	if len(s) > MaxLength {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrSyntax, MaxLength)
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, nil
	}
	p := &parser{toks: toks}
	root, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errAt(t, "unexpected %s", t)
	}
	return &Filter{root: root}, nil
}

type node interface {
	eval(c *Connection) bool
	write(b *strings.Builder)
}

type (
	orNode  struct{ l, r node }
	andNode struct{ l, r node }
	notNode struct{ x node }
	// cmpNode compares two operands with eq (ne when neg).
	cmpNode struct {
		l, r operand
		neg  bool
	}
	inGroupsNode   struct{ group string }
	startsWithNode struct {
		field  string
		prefix string
	}
)

// operand is a field (userId, connectionId), a string literal or null.
type operand struct {
	field  string // "" for a literal
	value  string
	isNull bool
}

func (o operand) resolve(c *Connection) (string, bool) {
	switch o.field {
	case fieldUserID:
		return c.UserID, c.UserID != ""
	case fieldConnectionID:
		return c.ID, true
	}
	return o.value, !o.isNull
}

func (n *orNode) eval(c *Connection) bool  { return n.l.eval(c) || n.r.eval(c) }
func (n *andNode) eval(c *Connection) bool { return n.l.eval(c) && n.r.eval(c) }
func (n *notNode) eval(c *Connection) bool { return !n.x.eval(c) }
func (n *cmpNode) eval(c *Connection) bool {
	lv, lok := n.l.resolve(c)
	rv, rok := n.r.resolve(c)
	// null equals null only (OData), so an anonymous connection has userId eq null.
	eq := lok == rok && (!lok || lv == rv)
	return eq != n.neg
}
func (n *inGroupsNode) eval(c *Connection) bool { return c.InGroup != nil && c.InGroup(n.group) }
func (n *startsWithNode) eval(c *Connection) bool {
	v, ok := operand{field: n.field}.resolve(c)
	return ok && strings.HasPrefix(v, n.prefix)
}

// The canonical form puts parentheses only where precedence (not > and > or, both
// left-associative) needs them, so that a long flat chain stays flat and parses again
// within MaxDepth.
func (n *orNode) write(b *strings.Builder) {
	n.l.write(b)
	b.WriteString(" or ")
	writeIf(b, n.r, isOr)
}

func (n *andNode) write(b *strings.Builder) {
	writeIf(b, n.l, isOr)
	b.WriteString(" and ")
	writeIf(b, n.r, func(x node) bool { return isOr(x) || isAnd(x) })
}

func (n *notNode) write(b *strings.Builder) {
	b.WriteString("not ")
	writeIf(b, n.x, func(x node) bool { return isOr(x) || isAnd(x) })
}

func isOr(x node) bool  { _, ok := x.(*orNode); return ok }
func isAnd(x node) bool { _, ok := x.(*andNode); return ok }

// writeIf writes x, in parentheses when paren(x).
func writeIf(b *strings.Builder, x node, paren func(node) bool) {
	if !paren(x) {
		x.write(b)
		return
	}
	b.WriteByte('(')
	x.write(b)
	b.WriteByte(')')
}
func (n *cmpNode) write(b *strings.Builder) {
	n.l.write(b)
	if n.neg {
		b.WriteString(" ne ")
	} else {
		b.WriteString(" eq ")
	}
	n.r.write(b)
}
func (n *inGroupsNode) write(b *strings.Builder) {
	writeString(b, n.group)
	b.WriteString(" in groups")
}
func (n *startsWithNode) write(b *strings.Builder) {
	b.WriteString("startswith(" + n.field + ", ")
	writeString(b, n.prefix)
	b.WriteByte(')')
}

func (o operand) write(b *strings.Builder) {
	switch {
	case o.field != "":
		b.WriteString(o.field)
	case o.isNull:
		b.WriteString("null")
	default:
		writeString(b, o.value)
	}
}

func writeString(b *strings.Builder, s string) {
	b.WriteByte('\'')
	b.WriteString(strings.ReplaceAll(s, "'", "''"))
	b.WriteByte('\'')
}
