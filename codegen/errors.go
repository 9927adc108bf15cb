package codegen

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Diagnostic is a problem found in a `.proto` file, at a position. Line and
// Col are 1-based; both are 0 when the position is unknown.
type Diagnostic struct {
	// File is the file's import path, as `import` statements name it
	// ("bank/v1/account.proto").
	File string
	Line int
	Col  int
	// Message says what is wrong and what to change.
	Message string
}

// String formats d as "file:line:col: message", the form editors and CI
// annotations recognise.
func (d Diagnostic) String() string {
	switch {
	case d.File == "":
		return d.Message
	case d.Line == 0:
		return fmt.Sprintf("%s: %s", d.File, d.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s", d.File, d.Line, d.Col, d.Message)
}

// Error is returned when compiling or generating fails: every problem found,
// sorted by position. Nothing is written when generation returns an Error.
type Error struct {
	Diagnostics []Diagnostic
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, d := range e.Diagnostics {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(d.String())
	}
	return b.String()
}

// sortDiagnostics orders ds by file, line, column and message, and drops
// exact duplicates.
func sortDiagnostics(ds []Diagnostic) []Diagnostic {
	slices.SortStableFunc(ds, func(a, b Diagnostic) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col),
			cmp.Compare(a.Message, b.Message),
		)
	})
	return slices.Compact(ds)
}
