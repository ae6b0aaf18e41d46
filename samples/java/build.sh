#!/usr/bin/env bash
# Builds the Java Dubbo samples' fat jar (target/shoal-java-samples.jar) with
# Maven, offline-friendly and quiet: nothing happens when the jar is newer
# than the sources, the pom and greet.proto. Prints the jar's path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
jar="$here/target/shoal-java-samples.jar"
newest=$(find "$here/pom.xml" "$here/src" "$here/../../proto/greet/greet.proto" -type f -newer "$jar" 2>/dev/null | head -1 || true)
if [[ -f $jar && -z $newest ]]; then
	echo "$jar"
	exit 0
fi
command -v mvn >/dev/null || { echo "error: Maven is not installed (apt-get install maven)" >&2; exit 1; }
command -v java >/dev/null || { echo "error: a JDK 17 is not installed (apt-get install openjdk-17-jdk-headless)" >&2; exit 1; }
echo "samples/java: building with Maven (the first build downloads Dubbo and protoc from Maven Central)" >&2
(cd "$here" && mvn -B -q -DskipTests package </dev/null)
echo "$jar"
