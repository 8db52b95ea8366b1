#!/usr/bin/env bash
# Installs (once) the veraPDF command-line validator for the PDF option tests
# (tests/pdf) and prints the path of its launcher as the LAST line of stdout.
#
#   "$(scripts/verapdf.sh | tail -1)" --flavour 2b --format text FILE.pdf
#
# veraPDF (greenfield-apps, GPLv3+/MPLv2+) and its dependencies come from Maven
# Central through Maven, pinned to one version; Java from Debian's
# default-jre-headless (scripts/dev-packages.txt). Everything goes under
# ${GENDOC_CACHE:-$HOME/.cache/gendoc}/verapdf/<version>/, never the repository:
#   lib/      the jars (about 19 MB)
#   m2/       Maven's local repository for this download
#   verapdf   the launcher
# Idempotent and safe to run concurrently (flock).
set -euo pipefail

VERSION="${VERAPDF_VERSION:-1.28.2}"
DIR="${GENDOC_CACHE:-$HOME/.cache/gendoc}/verapdf/$VERSION"
LAUNCHER="$DIR/verapdf"
log() { echo "verapdf.sh: $*" >&2; }

mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9
if [ -f "$DIR/.complete" ] && [ -x "$LAUNCHER" ]; then
  echo "$LAUNCHER"
  exit 0
fi
command -v mvn >/dev/null && command -v java >/dev/null \
  || { log "needs mvn and java (scripts/dev-packages.txt: maven, default-jre-headless)"; exit 1; }

# veraPDF's apps ask for their library modules by version range ([1.28.0,1.29.0)):
# each is pinned to VERSION here, so that the download is the same every time.
managed=""
for module in core feature-reporting metadata-fixer parser pdf-model validation-model \
              verapdf-xmp-core; do
  managed+="<dependency><groupId>org.verapdf</groupId><artifactId>$module</artifactId>"
  managed+="<version>$VERSION</version></dependency>"
done
cat > "$DIR/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>gendoc.tests</groupId><artifactId>verapdf-cli</artifactId><version>1</version>
  <dependencyManagement><dependencies>$managed</dependencies></dependencyManagement>
  <dependencies>
    <dependency>
      <groupId>org.verapdf.apps</groupId><artifactId>greenfield-apps</artifactId>
      <version>$VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
log "resolving veraPDF $VERSION with Maven (once)"
rm -rf "$DIR/lib"
mvn -B -q -f "$DIR/pom.xml" -Dmaven.repo.local="$DIR/m2" \
  dependency:copy-dependencies -DoutputDirectory="$DIR/lib" >&2

cat > "$LAUNCHER.tmp" <<SH
#!/bin/sh
# veraPDF $VERSION command line, installed by scripts/verapdf.sh.
exec java -Xss4m -cp "$DIR/lib/*" org.verapdf.apps.GreenfieldCliWrapper "\$@"
SH
chmod +x "$LAUNCHER.tmp"
mv -f "$LAUNCHER.tmp" "$LAUNCHER"
"$LAUNCHER" --version | grep -q "veraPDF $VERSION" || { log "the launcher does not run"; exit 1; }
touch "$DIR/.complete"
echo "$LAUNCHER"
