package codegen

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// fingerprint hashes the schema of md and of every message and enum it
// reaches through its fields: full names, field numbers, names, kinds,
// cardinality, presence and oneof membership, enum values. Comments and
// options do not count, nor does declaration order, so the hash changes only
// when the decoded state could differ. It is the same on every machine.
func fingerprint(md protoreflect.MessageDescriptor) string {
	var lines []string
	seen := make(map[protoreflect.FullName]bool)
	var enum func(ed protoreflect.EnumDescriptor)
	enum = func(ed protoreflect.EnumDescriptor) {
		if seen[ed.FullName()] {
			return
		}
		seen[ed.FullName()] = true
		var b strings.Builder
		fmt.Fprintf(&b, "enum %s", ed.FullName())
		values := ed.Values()
		for i := range values.Len() {
			v := values.Get(i)
			fmt.Fprintf(&b, " %d=%s", v.Number(), v.Name())
		}
		lines = append(lines, b.String())
	}
	var message func(md protoreflect.MessageDescriptor)
	message = func(md protoreflect.MessageDescriptor) {
		if seen[md.FullName()] {
			return
		}
		seen[md.FullName()] = true
		fields := md.Fields()
		var fs []string
		for i := range fields.Len() {
			fd := fields.Get(i)
			s := fmt.Sprintf("%d %s %s %s", fd.Number(), fd.Name(), fd.Cardinality(), fd.Kind())
			if fd.HasPresence() {
				s += " presence"
			}
			if o := fd.ContainingOneof(); o != nil && !o.IsSynthetic() {
				s += " oneof=" + string(o.Name())
			}
			switch {
			case fd.Message() != nil:
				s += " " + string(fd.Message().FullName())
				message(fd.Message())
			case fd.Enum() != nil:
				s += " " + string(fd.Enum().FullName())
				enum(fd.Enum())
			}
			fs = append(fs, s)
		}
		slices.Sort(fs)
		lines = append(lines, fmt.Sprintf("message %s {%s}", md.FullName(), strings.Join(fs, "; ")))
	}
	message(md)
	slices.Sort(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(sum[:16])
}
