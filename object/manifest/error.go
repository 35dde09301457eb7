package manifest

import (
	"strconv"
	"strings"
)

// Error is a manifest that cannot be used, located as precisely as the input
// allows. It formats as "FILE: document N: PATH: MSG", leaving out the parts
// that are not known (ValidateObject has no file or document).
type Error struct {
	File string // source name; "-" for standard input
	Doc  int    // 1-based index of the document in File; 0 when unknown
	Path string // JSON path of the field ("metadata.name", "items[2].data.x"); "" for the whole document
	Msg  string // what is wrong
}

func (e *Error) Error() string {
	var parts []string
	if e.File != "" {
		parts = append(parts, e.File)
	}
	if e.Doc > 0 {
		parts = append(parts, "document "+strconv.Itoa(e.Doc))
	}
	// A message that is a sentence about the field ("kind \"X\" ...: unknown
	// kind") already names it; do not repeat the path.
	if e.Path != "" && !strings.HasPrefix(e.Msg, e.Path+" ") {
		parts = append(parts, e.Path)
	}
	parts = append(parts, e.Msg)
	return strings.Join(parts, ": ")
}

// fieldErr is an Error before it knows its file and document.
type fieldErr struct {
	path, msg string
}

func errAt(path, msg string) *fieldErr { return &fieldErr{path: path, msg: msg} }

// join appends a field name or index to a path.
func join(path, name string) string {
	if path == "" || strings.HasPrefix(name, "[") {
		return path + name
	}
	return path + "." + name
}
