package lock

// quickShape is checkShape's first look at a record: byte by byte rather than token by token,
// a few times faster, for a record whose every node is read at every change of its queue. It
// says only whether it is sure the record has its shape; when it is not (a key with an escape
// or outside ASCII, a syntax error, values nested too deep, a field unknown or given twice),
// checkShape reads it token by token for the error.
func quickShape(data []byte, s *shape) bool {
	q := shapeReader{data: data}
	q.space()
	if !q.eat('{') || !q.object(s, 1) {
		return false
	}
	q.space()
	return q.i == len(q.data)
}

type shapeReader struct {
	data []byte
	i    int
}

// object reads the rest of an object whose '{' was read, at depth.
func (q *shapeReader) object(s *shape, depth int) bool {
	q.space()
	if q.eat('}') {
		return true
	}
	var buf [8][]byte
	keys := buf[:0]
	for {
		q.space()
		key, ok := q.key()
		if !ok {
			return false
		}
		for _, k := range keys {
			if string(k) == string(key) {
				return false
			}
		}
		keys = append(keys, key)
		var field *shape
		if s != nil && s.fields != nil {
			f, ok := s.fields[string(key)]
			if !ok {
				return false
			}
			field = f
		}
		q.space()
		if !q.eat(':') || !q.value(field, depth) {
			return false
		}
		q.space()
		if !q.eat(',') {
			return q.eat('}')
		}
	}
}

// value reads one value at depth (that of the object or list it is in).
func (q *shapeReader) value(s *shape, depth int) bool {
	q.space()
	if q.i >= len(q.data) {
		return false
	}
	switch c := q.data[q.i]; {
	case c == '{' || c == '[':
		if depth++; depth > maxDepth {
			return false
		}
		q.i++
		if c == '{' {
			return q.object(s, depth)
		}
		var elem *shape
		if s != nil {
			elem = s.elem
		}
		return q.list(elem, depth)
	case c == '"':
		return q.str()
	case c == '-' || c >= '0' && c <= '9':
		return q.number()
	}
	for _, lit := range []string{"true", "false", "null"} {
		if len(q.data)-q.i >= len(lit) && string(q.data[q.i:q.i+len(lit)]) == lit {
			q.i += len(lit)
			return true
		}
	}
	return false
}

// list reads the rest of a list whose '[' was read, at depth.
func (q *shapeReader) list(elem *shape, depth int) bool {
	q.space()
	if q.eat(']') {
		return true
	}
	for {
		if !q.value(elem, depth) {
			return false
		}
		q.space()
		if !q.eat(',') {
			return q.eat(']')
		}
	}
}

// key reads a key: plain ASCII, no escape.
func (q *shapeReader) key() ([]byte, bool) {
	if !q.eat('"') {
		return nil, false
	}
	start := q.i
	for ; q.i < len(q.data); q.i++ {
		switch c := q.data[q.i]; {
		case c == '"':
			q.i++
			return q.data[start : q.i-1], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

// str reads a string value whose escapes are JSON's.
func (q *shapeReader) str() bool {
	for q.i++; q.i < len(q.data); q.i++ {
		switch c := q.data[q.i]; {
		case c == '"':
			q.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if !q.escape() {
				return false
			}
		}
	}
	return false
}

// escape checks the escape at q.i and leaves q.i at its last byte.
func (q *shapeReader) escape() bool {
	if q.i+1 >= len(q.data) {
		return false
	}
	q.i++
	switch q.data[q.i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return true
	case 'u':
		if q.i+4 >= len(q.data) {
			return false
		}
		for _, h := range q.data[q.i+1 : q.i+5] {
			if !isHex(h) {
				return false
			}
		}
		q.i += 4
		return true
	}
	return false
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// number reads a number as JSON spells it.
func (q *shapeReader) number() bool {
	q.eat('-')
	switch {
	case q.eat('0'):
	case q.digits() == 0:
		return false
	}
	if q.eat('.') && q.digits() == 0 {
		return false
	}
	if q.eat('e') || q.eat('E') {
		if !q.eat('+') {
			q.eat('-')
		}
		if q.digits() == 0 {
			return false
		}
	}
	return true
}

func (q *shapeReader) digits() int {
	start := q.i
	for q.i < len(q.data) && q.data[q.i] >= '0' && q.data[q.i] <= '9' {
		q.i++
	}
	return q.i - start
}

func (q *shapeReader) space() {
	for q.i < len(q.data) {
		switch q.data[q.i] {
		case ' ', '\t', '\n', '\r':
			q.i++
		default:
			return
		}
	}
}

func (q *shapeReader) eat(c byte) bool {
	if q.i < len(q.data) && q.data[q.i] == c {
		q.i++
		return true
	}
	return false
}
