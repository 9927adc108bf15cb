package es

// SupportPackageIsVersion1 is referenced by code that esgen generates, as
// `const _ = es.SupportPackageIsVersion1`. If that line fails to compile, the
// generated code and this runtime are from different esgen releases: upgrade
// the one that is behind and regenerate.
const SupportPackageIsVersion1 = true
