#!/usr/bin/env bash
# Fails when a Swift file is not formatted as .swift-format says (swift-nio's configuration).
# Fix with: git ls-files -z '*.swift' | xargs -0 swift format format --in-place --parallel
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files -z '*.swift' | xargs -0 swift format lint --strict --parallel
