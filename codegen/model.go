package codegen

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	esgenv1 "github.com/esgen-dev/esgen/proto/esgen/v1"
)

// Source path numbers of descriptor.proto, for positions of options.
const (
	pathMessageOptions = 7 // DescriptorProto.options
	pathFieldOptions   = 8 // FieldDescriptorProto.options
)

// model is everything esgen declares in one request, checked.
type model struct {
	gen   *protogen.Plugin
	diags []Diagnostic

	// messages indexes every message of the request by full name.
	messages map[protoreflect.FullName]*protogen.Message
	// fileOf maps every message to the file that declares it.
	fileOf map[*protogen.Message]*protogen.File

	aggregates  []*aggregate
	commands    []*command
	events      []*event
	projections []*projection
	processes   []*process

	aggregateOf map[*protogen.Message]*aggregate
	eventOf     map[*protogen.Message]*event
	commandOf   map[*protogen.Message]*command

	names map[protogen.GoImportPath]*nameTable
}

type aggregate struct {
	msg           *protogen.Message
	file          *protogen.File
	idField       *protogen.Field
	snapshotEvery uint32
	category      string
	commands      []*command
	events        []*event
	fingerprint   string

	// Generated names.
	nameConst, categoryConst, fingerprintConst, streamName, idFromStream  string
	commandIface, eventIface, decider, evolver, descriptor, newDescriptor string
	test, newTest, commandMarker, eventMarker                             string
}

type command struct {
	msg     *protogen.Message
	file    *protogen.File
	agg     *aggregate
	idField *protogen.Field
	creates bool

	typeConst string
}

type event struct {
	msg          *protogen.Message
	file         *protogen.File
	agg          *aggregate // nil for an event of a file outside the generated set whose aggregate is unknown
	deprecated   bool
	replacedBy   string
	subjectField *protogen.Field
	pii          []string

	typeConst string
}

type projection struct {
	msg    *protogen.Message
	file   *protogen.File
	name   string
	events []*event
	// methods holds the projector method name for each event.
	methods []string

	nameConst, projector, router, newRouter string
}

type process struct {
	msg         *protogen.Message
	file        *protogen.File
	name        string
	events      []*event
	methods     []string
	correlation string // field name

	nameConst, handler, manager, newManager string
}

// buildModel reads the esgen options of every file in gen and checks them.
// Problems in files that are not generated are not reported: their
// declarations are skipped instead, so that a dependency cannot fail a
// build that does not generate it.
func buildModel(gen *protogen.Plugin) *model {
	m := &model{
		gen:         gen,
		messages:    make(map[protoreflect.FullName]*protogen.Message),
		fileOf:      make(map[*protogen.Message]*protogen.File),
		aggregateOf: make(map[*protogen.Message]*aggregate),
		eventOf:     make(map[*protogen.Message]*event),
		commandOf:   make(map[*protogen.Message]*command),
		names:       make(map[protogen.GoImportPath]*nameTable),
	}
	files := sortedFiles(gen)
	type declared struct {
		f   *protogen.File
		msg *protogen.Message
	}
	var all []declared
	for _, f := range files {
		walkMessages(f.Messages, func(msg *protogen.Message) {
			m.messages[msg.Desc.FullName()] = msg
			m.fileOf[msg] = f
			all = append(all, declared{f, msg})
		})
	}

	// Aggregates first, so that commands and events can refer to them.
	for _, d := range all {
		m.roleCheck(d.f, d.msg)
		if ao := getExt[*esgenv1.AggregateOptions](d.msg, esgenv1.E_Aggregate); ao != nil {
			m.addAggregate(d.f, d.msg, ao)
		}
	}
	m.checkCategories()
	for _, d := range all {
		if co := getExt[*esgenv1.CommandOptions](d.msg, esgenv1.E_Command); co != nil {
			m.addCommand(d.f, d.msg, co)
		}
		if eo := getExt[*esgenv1.EventOptions](d.msg, esgenv1.E_Event); eo != nil {
			m.addEvent(d.f, d.msg, eo)
		}
	}
	for _, a := range m.aggregates {
		m.checkDuplicateNames(a)
		a.fingerprint = fingerprint(a.msg.Desc)
	}
	for _, d := range all {
		if po := getExt[*esgenv1.ProjectionOptions](d.msg, esgenv1.E_Projection); po != nil {
			m.addProjection(d.f, d.msg, po)
		}
		if po := getExt[*esgenv1.ProcessManagerOptions](d.msg, esgenv1.E_ProcessManager); po != nil {
			m.addProcess(d.f, d.msg, po)
		}
	}
	m.allocateNames(files)
	m.diags = sortDiagnostics(m.diags)
	return m
}

func sortedFiles(gen *protogen.Plugin) []*protogen.File {
	files := slices.Clone(gen.Files)
	slices.SortFunc(files, func(a, b *protogen.File) int { return strings.Compare(a.Desc.Path(), b.Desc.Path()) })
	return files
}

func walkMessages(msgs []*protogen.Message, fn func(*protogen.Message)) {
	for _, msg := range msgs {
		if msg.Desc.IsMapEntry() {
			continue
		}
		fn(msg)
		walkMessages(msg.Messages, fn)
	}
}

// getExt returns the message option xt of msg, or nil when it is not set.
func getExt[T proto.Message](msg *protogen.Message, xt protoreflect.ExtensionType) T {
	var zero T
	opts, ok := msg.Desc.Options().(*descriptorpb.MessageOptions)
	if !ok || opts == nil || !proto.HasExtension(opts, xt) {
		return zero
	}
	v, _ := proto.GetExtension(opts, xt).(T)
	return v
}

// roles lists the esgen message options, with their extension numbers.
var roles = []struct {
	name string
	xt   protoreflect.ExtensionType
}{
	{"aggregate", esgenv1.E_Aggregate},
	{"command", esgenv1.E_Command},
	{"event", esgenv1.E_Event},
	{"projection", esgenv1.E_Projection},
	{"process_manager", esgenv1.E_ProcessManager},
}

// roleCheck reports a message that carries more than one esgen role.
func (m *model) roleCheck(f *protogen.File, msg *protogen.Message) {
	opts, ok := msg.Desc.Options().(*descriptorpb.MessageOptions)
	if !ok || opts == nil {
		return
	}
	var have []string
	for _, r := range roles {
		if proto.HasExtension(opts, r.xt) {
			have = append(have, r.name)
			if len(have) == 2 {
				m.errorf(f, optionPath(msg, r.xt), "%s is declared both (esgen.v1.%s) and (esgen.v1.%s); a message has one role: split it into two messages",
					msg.Desc.FullName(), have[0], have[1])
			}
		}
	}
}

// errorf records a problem at path in f, if f is generated.
func (m *model) errorf(f *protogen.File, path protoreflect.SourcePath, format string, args ...any) {
	if !f.Generate {
		return
	}
	line, col := position(f, path)
	m.diags = append(m.diags, Diagnostic{File: f.Desc.Path(), Line: line, Col: col, Message: fmt.Sprintf(format, args...)})
}

// position returns the 1-based line and column of path in f, or of the
// nearest enclosing element that has a recorded position.
func position(f *protogen.File, path protoreflect.SourcePath) (line, col int) {
	locs := f.Desc.SourceLocations()
	for p := path; len(p) > 0; p = p[:len(p)-1] {
		loc := locs.ByPath(p)
		if loc.Path != nil || loc.StartLine != 0 || loc.StartColumn != 0 {
			return loc.StartLine + 1, loc.StartColumn + 1
		}
	}
	return 0, 0
}

func optionPath(msg *protogen.Message, xt protoreflect.ExtensionType, sub ...int32) protoreflect.SourcePath {
	p := slices.Clone(msg.Location.Path)
	p = append(p, pathMessageOptions, int32(xt.TypeDescriptor().Number()))
	return append(p, sub...)
}

// resolve finds the message that name refers to from the scope of msg, with
// protobuf's rules: a leading dot makes name fully qualified, otherwise the
// innermost enclosing scope that has it wins.
func (m *model) resolve(msg *protogen.Message, name string) *protogen.Message {
	if rest, ok := strings.CutPrefix(name, "."); ok {
		return m.messages[protoreflect.FullName(rest)]
	}
	scope := string(msg.Desc.FullName())
	for {
		if found := m.messages[protoreflect.FullName(joinName(scope, name))]; found != nil {
			return found
		}
		if scope == "" {
			return nil
		}
		i := strings.LastIndexByte(scope, '.')
		if i < 0 {
			scope = ""
		} else {
			scope = scope[:i]
		}
	}
}

func joinName(scope, name string) string {
	if scope == "" {
		return name
	}
	return scope + "." + name
}

// stringField finds the field named name in msg and checks that it is a
// singular string. what describes the option for messages.
func (m *model) stringField(f *protogen.File, at protoreflect.SourcePath, msg *protogen.Message, name, what string) *protogen.Field {
	var names []string
	for _, fld := range msg.Fields {
		if string(fld.Desc.Name()) == name {
			if fld.Desc.Kind() != protoreflect.StringKind || fld.Desc.Cardinality() == protoreflect.Repeated {
				m.errorf(f, at, "%s %q of %s is %s; it must name a singular string field", what, name, msg.Desc.FullName(), describeField(fld.Desc))
				return nil
			}
			return fld
		}
		names = append(names, string(fld.Desc.Name()))
	}
	if len(names) == 0 {
		m.errorf(f, at, "%s %q: %s has no fields; add a string field named %q", what, name, msg.Desc.FullName(), name)
	} else {
		m.errorf(f, at, "%s %q: %s has no such field; it has %s", what, name, msg.Desc.FullName(), strings.Join(names, ", "))
	}
	return nil
}

func describeField(fd protoreflect.FieldDescriptor) string {
	switch {
	case fd.IsMap():
		return fmt.Sprintf("a map<%s, %s>", kindName(fd.MapKey()), kindName(fd.MapValue()))
	case fd.Cardinality() == protoreflect.Repeated:
		return "a repeated " + kindName(fd)
	}
	return an(kindName(fd))
}

func kindName(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return string(fd.Message().FullName())
	case protoreflect.EnumKind:
		return string(fd.Enum().FullName())
	}
	return fd.Kind().String()
}

func (m *model) addAggregate(f *protogen.File, msg *protogen.Message, o *esgenv1.AggregateOptions) {
	xt := esgenv1.E_Aggregate
	a := &aggregate{msg: msg, file: f, snapshotEvery: o.GetSnapshotEvery(), category: o.GetStreamCategory()}
	ok := true
	if o.GetIdField() == "" {
		m.errorf(f, optionPath(msg, xt), "aggregate %s has no id_field: add id_field: \"<name of its string ID field>\"", msg.Desc.FullName())
		ok = false
	} else if a.idField = m.stringField(f, optionPath(msg, xt, 1), msg, o.GetIdField(), "id_field"); a.idField == nil {
		ok = false
	}
	if a.category == "" {
		a.category = string(msg.Desc.Name())
	} else if strings.Contains(a.category, "-") || strings.TrimSpace(a.category) != a.category {
		m.errorf(f, optionPath(msg, xt, 3), "stream_category %q of aggregate %s must not contain \"-\" or surrounding spaces: stream names are \"<category>-<id>\"", a.category, msg.Desc.FullName())
		ok = false
	}
	if !ok {
		return
	}
	m.aggregates = append(m.aggregates, a)
	m.aggregateOf[msg] = a
}

// checkCategories reports aggregates that would write to the same streams.
func (m *model) checkCategories() {
	seen := make(map[string]*aggregate)
	var keep []*aggregate
	for _, a := range m.aggregates {
		if prev := seen[a.category]; prev != nil {
			m.errorf(a.file, optionPath(a.msg, esgenv1.E_Aggregate), "aggregates %s and %s both use stream category %q, so their streams would mix: set a distinct stream_category on one of them",
				prev.msg.Desc.FullName(), a.msg.Desc.FullName(), a.category)
			delete(m.aggregateOf, a.msg)
			continue
		}
		seen[a.category] = a
		keep = append(keep, a)
	}
	m.aggregates = keep
}

// ownerAggregate resolves the aggregate option of a command or an event.
func (m *model) ownerAggregate(f *protogen.File, msg *protogen.Message, xt protoreflect.ExtensionType, kind, name string) *aggregate {
	at := optionPath(msg, xt, 1)
	if name == "" {
		m.errorf(f, optionPath(msg, xt), "%s %s names no aggregate: add aggregate: \"<aggregate state message>\"", kind, msg.Desc.FullName())
		return nil
	}
	target := m.resolve(msg, name)
	if target == nil {
		m.errorf(f, at, "%s %s names aggregate %q, but no message of that name is visible from package %s; name a message that has option (esgen.v1.aggregate)%s",
			kind, msg.Desc.FullName(), name, msg.Desc.ParentFile().Package(), m.aggregateHint())
		return nil
	}
	a := m.aggregateOf[target]
	if a == nil {
		if getExt[*esgenv1.AggregateOptions](target, esgenv1.E_Aggregate) == nil {
			m.errorf(f, at, "%s %s names aggregate %q, but %s is not an aggregate: add option (esgen.v1.aggregate) to it, or name another message%s",
				kind, msg.Desc.FullName(), name, target.Desc.FullName(), m.aggregateHint())
		}
		// Otherwise the aggregate itself was reported.
		return nil
	}
	if a.file.GoImportPath != f.GoImportPath {
		m.errorf(f, at, "%s %s is in Go package %s, but its aggregate %s is in %s: an aggregate's commands and events must share its Go package (set the same go_package) so that their sum types are sealed",
			kind, msg.Desc.FullName(), f.GoImportPath, a.msg.Desc.FullName(), a.file.GoImportPath)
		return nil
	}
	return a
}

func (m *model) aggregateHint() string {
	if len(m.aggregates) == 0 {
		return ""
	}
	var names []string
	for _, a := range m.aggregates {
		names = append(names, string(a.msg.Desc.FullName()))
	}
	return " (aggregates: " + strings.Join(names, ", ") + ")"
}

func (m *model) addCommand(f *protogen.File, msg *protogen.Message, o *esgenv1.CommandOptions) {
	xt := esgenv1.E_Command
	a := m.ownerAggregate(f, msg, xt, "command", o.GetAggregate())
	if a == nil {
		return
	}
	c := &command{msg: msg, file: f, agg: a, creates: o.GetCreates()}
	idName, at := o.GetIdField(), optionPath(msg, xt, 2)
	if idName == "" {
		idName, at = string(a.idField.Desc.Name()), optionPath(msg, xt)
	}
	if c.idField = m.stringField(f, at, msg, idName, "id_field"); c.idField == nil {
		return
	}
	m.commands = append(m.commands, c)
	m.commandOf[msg] = c
	a.commands = append(a.commands, c)
}

func (m *model) addEvent(f *protogen.File, msg *protogen.Message, o *esgenv1.EventOptions) {
	xt := esgenv1.E_Event
	e := &event{msg: msg, file: f, replacedBy: o.GetReplacedBy()}
	if mo, _ := msg.Desc.Options().(*descriptorpb.MessageOptions); o.GetDeprecated() || mo.GetDeprecated() {
		e.deprecated = true
	}
	if e.replacedBy != "" {
		if r := m.resolve(msg, e.replacedBy); r == nil || getExt[*esgenv1.EventOptions](r, xt) == nil {
			m.errorf(f, optionPath(msg, xt, 3), "replaced_by %q of event %s does not name an event message", e.replacedBy, msg.Desc.FullName())
			return
		}
		if !e.deprecated {
			m.errorf(f, optionPath(msg, xt, 3), "event %s has replaced_by but is not deprecated: add deprecated: true", msg.Desc.FullName())
			return
		}
	}
	a := m.ownerAggregate(f, msg, xt, "event", o.GetAggregate())
	if a == nil {
		if f.Generate {
			return
		}
		// An event of a dependency: still usable by projections.
	}
	e.agg = a
	switch {
	case o.GetSubjectField() != "":
		if e.subjectField = m.stringField(f, optionPath(msg, xt, 4), msg, o.GetSubjectField(), "subject_field"); e.subjectField == nil {
			return
		}
	case a != nil:
		for _, fld := range msg.Fields {
			if fld.Desc.Name() == a.idField.Desc.Name() && fld.Desc.Kind() == protoreflect.StringKind && fld.Desc.Cardinality() != protoreflect.Repeated {
				e.subjectField = fld
			}
		}
	}
	e.pii = piiPaths(msg.Desc, "", nil)
	if len(e.pii) > 0 && e.subjectField == nil {
		m.errorf(f, optionPath(msg, xt), "event %s holds personal data (%s) but names no subject: set subject_field to the string field that identifies the person it is about",
			msg.Desc.FullName(), strings.Join(e.pii, ", "))
		return
	}
	m.events = append(m.events, e)
	m.eventOf[msg] = e
	if a != nil {
		a.events = append(a.events, e)
	}
}

// piiPaths lists the fields of md marked pii, as dotted paths, descending
// into singular message fields that are not marked themselves.
func piiPaths(md protoreflect.MessageDescriptor, prefix string, visiting []protoreflect.FullName) []string {
	if slices.Contains(visiting, md.FullName()) {
		return nil
	}
	visiting = append(visiting, md.FullName())
	var out []string
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		path := prefix + string(fd.Name())
		if fo, _ := fd.Options().(*descriptorpb.FieldOptions); fo != nil && proto.HasExtension(fo, esgenv1.E_Field) {
			if proto.GetExtension(fo, esgenv1.E_Field).(*esgenv1.FieldOptions).GetPii() {
				out = append(out, path)
				continue
			}
		}
		if fd.Message() != nil && fd.Cardinality() != protoreflect.Repeated {
			out = append(out, piiPaths(fd.Message(), path+".", visiting)...)
		}
	}
	return out
}

// checkDuplicateNames reports commands or events of one aggregate whose Go
// method names would collide.
func (m *model) checkDuplicateNames(a *aggregate) {
	seen := make(map[string]*protogen.Message)
	for _, c := range a.commands {
		name := c.msg.GoIdent.GoName
		if prev := seen[name]; prev != nil {
			m.errorf(c.file, c.msg.Location.Path, "two commands of aggregate %s are named %s (%s and %s): rename one", a.msg.Desc.FullName(), name, prev.Desc.FullName(), c.msg.Desc.FullName())
		}
		seen[name] = c.msg
	}
	clear(seen)
	for _, e := range a.events {
		name := e.msg.GoIdent.GoName
		if prev := seen[name]; prev != nil {
			m.errorf(e.file, e.msg.Location.Path, "two events of aggregate %s are named %s (%s and %s): rename one; event type names are stored forever, so rename the one not yet in use", a.msg.Desc.FullName(), name, prev.Desc.FullName(), e.msg.Desc.FullName())
		}
		seen[name] = e.msg
	}
}

// consumedEvents resolves the events and aggregates a projection or process
// manager lists.
func (m *model) consumedEvents(f *protogen.File, msg *protogen.Message, xt protoreflect.ExtensionType, kind string, events, aggregates []string, eventsField, aggsField int32) ([]*event, bool) {
	var out []*event
	ok := true
	add := func(e *event, at protoreflect.SourcePath, name string) {
		if slices.Contains(out, e) {
			m.errorf(f, at, "%s %s consumes %s twice (%q): list it once", kind, msg.Desc.FullName(), e.msg.Desc.FullName(), name)
			ok = false
			return
		}
		out = append(out, e)
	}
	for i, name := range events {
		at := optionPath(msg, xt, eventsField, int32(i))
		target := m.resolve(msg, name)
		if target == nil {
			m.errorf(f, at, "%s %s lists event %q, but no message of that name is visible from package %s: name an event message of an imported file", kind, msg.Desc.FullName(), name, msg.Desc.ParentFile().Package())
			ok = false
			continue
		}
		e := m.eventOf[target]
		if e == nil {
			if getExt[*esgenv1.EventOptions](target, esgenv1.E_Event) == nil {
				m.errorf(f, at, "%s %s lists %q, but %s is not an event: add option (esgen.v1.event) to it, or name an event", kind, msg.Desc.FullName(), name, target.Desc.FullName())
			}
			ok = false
			continue
		}
		if !m.imports(f, e.file) {
			m.errorf(f, at, "%s %s lists event %s, declared in %s, which %s does not import: add import %q;", kind, msg.Desc.FullName(), target.Desc.FullName(), e.file.Desc.Path(), f.Desc.Path(), e.file.Desc.Path())
			ok = false
			continue
		}
		add(e, at, name)
	}
	for i, name := range aggregates {
		at := optionPath(msg, xt, aggsField, int32(i))
		target := m.resolve(msg, name)
		a := m.aggregateOf[target]
		if a == nil {
			if target == nil || getExt[*esgenv1.AggregateOptions](target, esgenv1.E_Aggregate) == nil {
				m.errorf(f, at, "%s %s lists aggregate %q, which is not an aggregate visible from package %s%s", kind, msg.Desc.FullName(), name, msg.Desc.ParentFile().Package(), m.aggregateHint())
			}
			ok = false
			continue
		}
		for _, e := range a.events {
			add(e, at, name)
		}
	}
	if ok && len(out) == 0 {
		m.errorf(f, optionPath(msg, xt), "%s %s consumes no events: list them in events (or their aggregates in aggregates)", kind, msg.Desc.FullName())
		ok = false
	}
	return out, ok
}

// imports reports whether file f is dep or imports it, directly or not.
func (m *model) imports(f, dep *protogen.File) bool {
	seen := make(map[string]bool)
	var walk func(fd protoreflect.FileDescriptor) bool
	walk = func(fd protoreflect.FileDescriptor) bool {
		if fd.Path() == dep.Desc.Path() {
			return true
		}
		if seen[fd.Path()] {
			return false
		}
		seen[fd.Path()] = true
		imps := fd.Imports()
		for i := range imps.Len() {
			if walk(imps.Get(i).FileDescriptor) {
				return true
			}
		}
		return false
	}
	return walk(f.Desc)
}

// handlerMethods names one method per event: prefix + the event's Go name,
// qualified by its Go package name where two events share a name.
func handlerMethods(prefix string, events []*event) []string {
	count := make(map[string]int)
	for _, e := range events {
		count[e.msg.GoIdent.GoName]++
	}
	out := make([]string, len(events))
	for i, e := range events {
		name := e.msg.GoIdent.GoName
		if count[name] > 1 {
			name = exportedName(string(e.file.GoPackageName)) + name
		}
		out[i] = prefix + name
	}
	return out
}

func exportedName(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (m *model) addProjection(f *protogen.File, msg *protogen.Message, o *esgenv1.ProjectionOptions) {
	events, ok := m.consumedEvents(f, msg, esgenv1.E_Projection, "projection", o.GetEvents(), o.GetAggregates(), 2, 3)
	if !ok {
		return
	}
	p := &projection{msg: msg, file: f, name: o.GetName(), events: events, methods: handlerMethods("Project", events)}
	if p.name == "" {
		p.name = string(msg.Desc.FullName())
	}
	m.projections = append(m.projections, p)
}

func (m *model) addProcess(f *protogen.File, msg *protogen.Message, o *esgenv1.ProcessManagerOptions) {
	xt := esgenv1.E_ProcessManager
	events, ok := m.consumedEvents(f, msg, xt, "process manager", o.GetEvents(), nil, 2, 0)
	if !ok {
		return
	}
	p := &process{msg: msg, file: f, name: o.GetName(), events: events, methods: handlerMethods("Handle", events), correlation: o.GetCorrelationField()}
	if p.name == "" {
		p.name = string(msg.Desc.FullName())
	}
	if p.correlation == "" {
		m.errorf(f, optionPath(msg, xt), "process manager %s has no correlation_field: name the string field, present in every event it lists, that selects the process instance", msg.Desc.FullName())
		return
	}
	for _, e := range events {
		if m.stringField(f, optionPath(msg, xt, 3), e.msg, p.correlation, "correlation_field") == nil {
			ok = false
		}
	}
	if ok {
		m.processes = append(m.processes, p)
	}
}
