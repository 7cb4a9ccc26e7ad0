package samtemplate

import (
	"debug/elf"
	"fmt"
)

// CheckBootstrap verifies that the file at path is what Lambda's
// provided.al2023 runtime on arm64 expects: a linux/arm64 (EM_AARCH64) ELF
// executable, static (no PT_INTERP program header, no DT_NEEDED library)
// and stripped (no .symtab).
func CheckBootstrap(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_AARCH64 {
		return fmt.Errorf("%s: %v %v, want ELFCLASS64 EM_AARCH64", path, f.Class, f.Machine)
	}
	if f.Type != elf.ET_EXEC {
		return fmt.Errorf("%s: ELF type %v, want ET_EXEC (a static, non-PIE executable)", path, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s: has a PT_INTERP program header: dynamically linked (build with CGO_ENABLED=0)", path)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: read dynamic section: %w", path, err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("%s: needs shared libraries %v (build with CGO_ENABLED=0)", path, libs)
	}
	if f.Section(".symtab") != nil {
		return fmt.Errorf("%s: not stripped (.symtab present; build with -ldflags=\"-s -w\")", path)
	}
	return nil
}
