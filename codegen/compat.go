package codegen

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"

	esgenv1 "github.com/esgen-dev/esgen/proto/esgen/v1"
)

// CompatProblem is a change found by [CheckCompatibility].
type CompatProblem struct {
	Diagnostic
	// Previous is true when the position is in the previous version (for
	// something that was removed), false when it is in the current one.
	Previous bool
}

// CompatReport is the result of [CheckCompatibility].
type CompatReport struct {
	// Breaking lists changes that would break reading stored events (or
	// loading aggregates): a removed or renamed event type, a field number
	// reused with another type, a field moved between singular, repeated and
	// map, a changed stream category.
	Breaking []CompatProblem
	// Warnings lists changes that read fine today but invite a breaking one
	// later, such as a removed field whose number is not reserved.
	Warnings []CompatProblem
	// Events and Aggregates count the declarations of the previous version
	// that were compared.
	Events, Aggregates int
}

// CheckCompatibility compares the event and state schemas declared in the
// files of cur (its FileToGenerate) with those of prev. Every event type and
// every aggregate state of prev must still exist under the same full name,
// and every message they use, directly or through other messages, must
// decode the bytes an earlier version wrote. Additive changes (new fields,
// new events, new aggregates) pass.
func CheckCompatibility(prev, cur *pluginpb.CodeGeneratorRequest) (*CompatReport, error) {
	pf, err := registry(prev)
	if err != nil {
		return nil, fmt.Errorf("previous schema: %w", err)
	}
	cf, err := registry(cur)
	if err != nil {
		return nil, fmt.Errorf("current schema: %w", err)
	}
	c := &compat{prev: pf, cur: cf, rep: &CompatReport{}, checked: make(map[protoreflect.FullName]bool)}
	for _, name := range prev.GetFileToGenerate() {
		fd, err := pf.FindFileByPath(name)
		if err != nil {
			return nil, fmt.Errorf("previous schema: %w", err)
		}
		walkDescriptors(fd.Messages(), func(md protoreflect.MessageDescriptor) {
			if opts := messageOptions(md); opts != nil {
				if proto.HasExtension(opts, esgenv1.E_Event) {
					c.rep.Events++
					c.event(md, proto.GetExtension(opts, esgenv1.E_Event).(*esgenv1.EventOptions))
				}
				if proto.HasExtension(opts, esgenv1.E_Aggregate) {
					c.rep.Aggregates++
					c.aggregate(md, proto.GetExtension(opts, esgenv1.E_Aggregate).(*esgenv1.AggregateOptions))
				}
			}
		})
	}
	for _, ps := range []*[]CompatProblem{&c.rep.Breaking, &c.rep.Warnings} {
		slices.SortStableFunc(*ps, func(a, b CompatProblem) int {
			return cmp.Or(cmpBool(a.Previous, b.Previous), cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
		})
	}
	return c.rep, nil
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func registry(req *pluginpb.CodeGeneratorRequest) (*protoregistry.Files, error) {
	// Round-trip through the wire form so that esgen options are parsed
	// with the compiled-in extension types, as a plugin would see them.
	b, err := proto.Marshal(&descriptorpb.FileDescriptorSet{File: req.GetProtoFile()})
	if err != nil {
		return nil, err
	}
	set := new(descriptorpb.FileDescriptorSet)
	if err := proto.Unmarshal(b, set); err != nil {
		return nil, err
	}
	return protodesc.NewFiles(set)
}

func walkDescriptors(msgs protoreflect.MessageDescriptors, fn func(protoreflect.MessageDescriptor)) {
	for i := range msgs.Len() {
		md := msgs.Get(i)
		if md.IsMapEntry() {
			continue
		}
		fn(md)
		walkDescriptors(md.Messages(), fn)
	}
}

func messageOptions(md protoreflect.MessageDescriptor) *descriptorpb.MessageOptions {
	opts, _ := md.Options().(*descriptorpb.MessageOptions)
	return opts
}

type compat struct {
	prev    *protoregistry.Files
	cur     *protoregistry.Files
	rep     *CompatReport
	checked map[protoreflect.FullName]bool
}

func (c *compat) find(name protoreflect.FullName) protoreflect.MessageDescriptor {
	d, err := c.cur.FindDescriptorByName(name)
	if err != nil {
		return nil
	}
	md, _ := d.(protoreflect.MessageDescriptor)
	return md
}

// sameName returns the full name of a current message named name in any
// package, or "" when there is none.
func (c *compat) sameName(name protoreflect.Name) protoreflect.FullName {
	var found []string
	c.cur.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		walkDescriptors(fd.Messages(), func(md protoreflect.MessageDescriptor) {
			if md.Name() == name {
				found = append(found, string(md.FullName()))
			}
		})
		return true
	})
	if len(found) == 0 {
		return ""
	}
	slices.Sort(found)
	return protoreflect.FullName(found[0])
}

func at(d protoreflect.Descriptor) Diagnostic {
	loc := d.ParentFile().SourceLocations().ByDescriptor(d)
	diag := Diagnostic{File: d.ParentFile().Path()}
	if loc.StartLine != 0 || loc.StartColumn != 0 || loc.Path != nil {
		diag.Line, diag.Col = loc.StartLine+1, loc.StartColumn+1
	}
	return diag
}

func (c *compat) breaking(d protoreflect.Descriptor, previous bool, format string, args ...any) {
	diag := at(d)
	diag.Message = fmt.Sprintf(format, args...)
	c.rep.Breaking = append(c.rep.Breaking, CompatProblem{Diagnostic: diag, Previous: previous})
}

func (c *compat) warn(d protoreflect.Descriptor, previous bool, format string, args ...any) {
	diag := at(d)
	diag.Message = fmt.Sprintf(format, args...)
	c.rep.Warnings = append(c.rep.Warnings, CompatProblem{Diagnostic: diag, Previous: previous})
}

// resolveIn resolves an option's message name from the scope of md, with
// protobuf's scoping rules, among the messages of files.
func resolveIn(files *protoregistry.Files, md protoreflect.MessageDescriptor, name string) protoreflect.FullName {
	if rest, ok := strings.CutPrefix(name, "."); ok {
		return protoreflect.FullName(rest)
	}
	scope := string(md.FullName())
	for {
		candidate := protoreflect.FullName(joinName(scope, name))
		if d, err := files.FindDescriptorByName(candidate); err == nil {
			if _, ok := d.(protoreflect.MessageDescriptor); ok {
				return candidate
			}
		}
		if scope == "" {
			return protoreflect.FullName(name)
		}
		if i := strings.LastIndexByte(scope, '.'); i >= 0 {
			scope = scope[:i]
		} else {
			scope = ""
		}
	}
}

func (c *compat) event(old protoreflect.MessageDescriptor, oo *esgenv1.EventOptions) {
	cur := c.find(old.FullName())
	if cur == nil {
		if moved := c.sameName(old.Name()); moved != "" {
			c.breaking(old, true, "event type %s is now %s: its package or full name changed, so events stored under the old name could no longer be read; keep the message where it was (mark it deprecated: true) and add a new one instead", old.FullName(), moved)
			return
		}
		c.breaking(old, true, "event type %s was removed or renamed: events stored under that name could no longer be read; keep the message (mark it deprecated: true) and add a new one instead", old.FullName())
		return
	}
	opts := messageOptions(cur)
	if opts == nil || !proto.HasExtension(opts, esgenv1.E_Event) {
		c.breaking(cur, false, "%s is no longer an event: its aggregate could no longer evolve the stored events of this type; restore its option (esgen.v1.event)", cur.FullName())
		return
	}
	co := proto.GetExtension(opts, esgenv1.E_Event).(*esgenv1.EventOptions)
	if was, is := resolveIn(c.prev, old, oo.GetAggregate()), resolveIn(c.cur, cur, co.GetAggregate()); was != is {
		c.breaking(cur, false, "event %s moved from aggregate %s to %s: the streams of %s hold it and could no longer be loaded", cur.FullName(), was, is, was)
	}
	c.message(old, cur)
}

func (c *compat) aggregate(old protoreflect.MessageDescriptor, oo *esgenv1.AggregateOptions) {
	cur := c.find(old.FullName())
	if cur == nil {
		c.breaking(old, true, "aggregate %s was removed or renamed: its streams could no longer be loaded; keep its state message under that name", old.FullName())
		return
	}
	opts := messageOptions(cur)
	if opts == nil || !proto.HasExtension(opts, esgenv1.E_Aggregate) {
		c.breaking(cur, false, "%s is no longer an aggregate: its streams could no longer be loaded; restore its option (esgen.v1.aggregate)", cur.FullName())
		return
	}
	co := proto.GetExtension(opts, esgenv1.E_Aggregate).(*esgenv1.AggregateOptions)
	category := func(md protoreflect.MessageDescriptor, o *esgenv1.AggregateOptions) string {
		if o.GetStreamCategory() != "" {
			return o.GetStreamCategory()
		}
		return string(md.Name())
	}
	if was, is := category(old, oo), category(cur, co); was != is {
		c.breaking(cur, false, "the stream category of aggregate %s changed from %q to %q: its existing streams (%s-<id>) would be orphaned; set stream_category: %q", cur.FullName(), was, is, was, was)
	}
	c.message(old, cur)
}

// cardinality classifies a field as singular, repeated or map.
func cardinality(fd protoreflect.FieldDescriptor) string {
	switch {
	case fd.IsMap():
		return "map"
	case fd.Cardinality() == protoreflect.Repeated:
		return "repeated"
	}
	return "singular"
}

// typeName describes a field's type for messages ("int64",
// "common.v1.Money", "map<string, int64>").
func typeName(fd protoreflect.FieldDescriptor) string {
	if fd.IsMap() {
		return fmt.Sprintf("map<%s, %s>", kindName(fd.MapKey()), kindName(fd.MapValue()))
	}
	return kindName(fd)
}

// message compares a message of the previous schema with the message of
// the same name in the current one, and then the messages its fields use.
func (c *compat) message(old, cur protoreflect.MessageDescriptor) {
	if c.checked[old.FullName()] {
		return
	}
	c.checked[old.FullName()] = true
	oldFields := old.Fields()
	for i := range oldFields.Len() {
		of := oldFields.Get(i)
		nf := cur.Fields().ByNumber(of.Number())
		if nf == nil {
			if !isReserved(cur, of) {
				c.warn(cur, false, "field %d (%s) of %s was removed without reserving its number or name: add reserved %d; and reserved %q; so that they are never reused with another type",
					of.Number(), of.Name(), cur.FullName(), of.Number(), of.Name())
			}
			continue
		}
		if oc, nc := cardinality(of), cardinality(nf); oc != nc {
			c.breaking(nf, false, "field %d of %s moved from %s to %s (%s %s, now %s %s): stored values would be misread; add a new field with a new number instead",
				of.Number(), cur.FullName(), oc, nc, typeName(of), of.Name(), typeName(nf), nf.Name())
			continue
		}
		if ot, nt := typeName(of), typeName(nf); ot != nt {
			c.breaking(nf, false, "field %d of %s changed type from %s %s to %s %s: stored values would be misread; give the new field a new number and reserve %d",
				of.Number(), cur.FullName(), ot, of.Name(), nt, nf.Name(), of.Number())
			continue
		}
		// Compare the messages the field uses, under their unchanged names.
		om, nm := of.Message(), nf.Message()
		if of.IsMap() {
			om, nm = of.MapValue().Message(), nf.MapValue().Message()
		}
		if om != nil && nm != nil {
			c.message(om, nm)
		}
	}
}

// isReserved reports whether md reserves the number or the name of f.
func isReserved(md protoreflect.MessageDescriptor, f protoreflect.FieldDescriptor) bool {
	return md.ReservedRanges().Has(f.Number()) || md.ReservedNames().Has(f.Name())
}
