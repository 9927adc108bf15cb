package pgtest

type SearchPlaces = searchPlaces

var (
	FindBinDir          = findBinDir
	DefaultSearchPlaces = defaultSearchPlaces
	ErrNoBinaries       = errNoBinaries
	WithDatabase        = withDatabase
)

func NewSearchPlaces(pathList, debianRoot string) SearchPlaces {
	return searchPlaces{pathList: pathList, debianRoot: debianRoot}
}
