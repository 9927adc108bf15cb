package codegen

import (
	"google.golang.org/protobuf/compiler/protogen"
)

// nameTable hands out package-level Go names in one Go package, so that
// esgen's names never collide with protoc-gen-go's, with messages the user
// named like a generated identifier, or with each other. A taken name gets
// underscores appended, as protoc-gen-go does for its own conflicts.
type nameTable struct {
	taken map[string]bool
}

func (t *nameTable) take(want string) string {
	for t.taken[want] {
		want += "_"
	}
	t.taken[want] = true
	return want
}

// table returns the name table of the Go package of f, filled on first use
// with the names protoc-gen-go declares in every file of that package.
func (m *model) table(f *protogen.File) *nameTable {
	if t := m.names[f.GoImportPath]; t != nil {
		return t
	}
	t := &nameTable{taken: make(map[string]bool)}
	for _, pf := range m.gen.Files {
		if pf.GoImportPath != f.GoImportPath {
			continue
		}
		t.taken[pf.GoDescriptorIdent.GoName] = true
		for _, x := range pf.Extensions {
			t.taken[x.GoIdent.GoName] = true
		}
		addEnums(t, pf.Enums)
		var addMessages func(msgs []*protogen.Message)
		addMessages = func(msgs []*protogen.Message) {
			for _, msg := range msgs {
				t.taken[msg.GoIdent.GoName] = true
				for _, fld := range msg.Fields {
					if fld.Oneof != nil && !fld.Oneof.Desc.IsSynthetic() {
						t.taken[fld.GoIdent.GoName] = true
					}
					if fld.Desc.HasDefault() {
						t.taken["Default_"+msg.GoIdent.GoName+"_"+fld.GoName] = true
					}
				}
				for _, x := range msg.Extensions {
					t.taken[x.GoIdent.GoName] = true
				}
				addEnums(t, msg.Enums)
				addMessages(msg.Messages)
			}
		}
		addMessages(pf.Messages)
	}
	m.names[f.GoImportPath] = t
	return t
}

func addEnums(t *nameTable, enums []*protogen.Enum) {
	for _, e := range enums {
		t.taken[e.GoIdent.GoName] = true
		t.taken[e.GoIdent.GoName+"_name"] = true
		t.taken[e.GoIdent.GoName+"_value"] = true
		for _, v := range e.Values {
			t.taken[v.GoIdent.GoName] = true
		}
	}
}

// allocateNames gives every declaration its Go names, visiting files in path
// order and declarations in source order, so that the result is the same
// whichever file is generated.
func (m *model) allocateNames(files []*protogen.File) {
	for _, f := range files {
		walkMessages(f.Messages, func(msg *protogen.Message) {
			t := m.table(f)
			base := msg.GoIdent.GoName
			if a := m.aggregateOf[msg]; a != nil {
				a.nameConst = t.take(base + "AggregateName")
				a.categoryConst = t.take(base + "StreamCategory")
				a.fingerprintConst = t.take(base + "StateFingerprint")
				a.streamName = t.take(base + "StreamName")
				a.idFromStream = t.take(base + "IDFromStream")
				a.commandIface = t.take(base + "Command")
				a.eventIface = t.take(base + "Event")
				a.decider = t.take(base + "Decider")
				a.evolver = t.take(base + "Evolver")
				a.descriptor = t.take(base + "Aggregate")
				a.newDescriptor = t.take("New" + base + "Aggregate")
				a.test = t.take(base + "Test")
				a.newTest = t.take("New" + base + "Test")
				a.commandMarker = "is" + base + "Command"
				a.eventMarker = "is" + base + "Event"
			}
			if c := m.commandOf[msg]; c != nil {
				c.typeConst = t.take(base + "CommandType")
			}
			if e := m.eventOf[msg]; e != nil {
				e.typeConst = t.take(base + "EventType")
			}
			for _, p := range m.projections {
				if p.msg == msg {
					p.nameConst = t.take(base + "ProjectionName")
					p.projector = t.take(base + "Projector")
					p.router = t.take(base + "Projection")
					p.newRouter = t.take("New" + base + "Projection")
				}
			}
			for _, p := range m.processes {
				if p.msg == msg {
					p.nameConst = t.take(base + "ProcessName")
					p.handler = t.take(base + "Handler")
					p.manager = t.take(base + "ProcessManager")
					p.newManager = t.take("New" + base + "ProcessManager")
				}
			}
		})
	}
}
