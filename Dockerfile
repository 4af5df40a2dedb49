# The flotilla container image: `docker build -t flotilla:0.1.0 .` from the repository root.
#
# Stage 1 builds the release binaries and the Debian package from this tree, with the same
# scripts as a developer machine. Stage 2 installs that package on a slim Debian 12, so the
# image holds the binaries and exactly the shared libraries dpkg-shlibdeps found they need:
# no compiler, no headers, no sources.
FROM debian:12 AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/
RUN FLOTILLA_BROWSER_TESTS=0 scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake --preset release \
 && cmake --build --preset release -j "$(nproc)" \
 && cd build && cpack -G DEB \
 && mv flotilla_*.deb /flotilla.deb

FROM debian:12-slim
# The user comes first (uid 10001, as the Helm chart expects), so the package's postinst finds it.
RUN groupadd --system --gid 10001 flotilla \
 && useradd --system --uid 10001 --gid flotilla --home-dir /var/lib/flotilla --no-create-home \
      --shell /usr/sbin/nologin flotilla
COPY --from=build /flotilla.deb /tmp/flotilla.deb
# openssh-client: ssh-keygen checks signed commits (source.verify); sqlite3: online backups of
# the store (docs/operations.md).
RUN apt-get update \
 && apt-get install -y --no-install-recommends /tmp/flotilla.deb openssh-client sqlite3 \
 && rm -rf /var/lib/apt/lists/* /tmp/flotilla.deb \
 && install -d -o flotilla -g flotilla -m 0750 /var/lib/flotilla
USER 10001:10001
WORKDIR /var/lib/flotilla
# The store, the Git mirror and the owner lock live here; mount a volume.
VOLUME ["/var/lib/flotilla"]
EXPOSE 8080
ENTRYPOINT ["flotilla"]
CMD ["run", "--config", "/etc/flotilla/flotilla.yaml"]
