# ZooKeeper from Debian's `zookeeper` package (3.8), for docker/compose.yaml.
#   docker build -f docker/zookeeper.Dockerfile -t samsa-zookeeper:dev docker
# BASE_IMAGE is any Debian bookworm: debian:bookworm-slim from a registry, or the debootstrapped
# samsa-base:bookworm that docker/build-images.sh makes where there is no registry.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends zookeeper \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
# Debian's scripts read /etc/zookeeper/conf/environment. Log to stderr (docker logs) through
# slf4j-simple: the package leaves slf4j without a binding, i.e. silent.
RUN mkdir -p /var/lib/zookeeper/data \
 && chown -R zookeeper /var/lib/zookeeper \
 && echo 'CLASSPATH="$CLASSPATH:/usr/share/java/slf4j-simple.jar"' >> /etc/zookeeper/conf/environment \
 && printf '%s\n' tickTime=2000 dataDir=/var/lib/zookeeper/data clientPort=2181 \
        admin.enableServer=false 4lw.commands.whitelist=ruok,srvr,mntr > /etc/zookeeper/zoo-docker.cfg
# Timestamps; no INFO line for each health-check `ruok`.
ENV JVMFLAGS="-Dorg.slf4j.simpleLogger.showDateTime=true -Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ -Dorg.slf4j.simpleLogger.log.org.apache.zookeeper.server.NIOServerCnxn=warn"
USER zookeeper
EXPOSE 2181
# "imok" comes without a newline, so `read` fails at EOF yet fills r.
HEALTHCHECK --interval=2s --timeout=3s --retries=30 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/2181 && echo ruok >&3; read -t 2 r <&3; [ \"$r\" = imok ]"]
CMD ["/usr/share/zookeeper/bin/zkServer.sh", "start-foreground", "/etc/zookeeper/zoo-docker.cfg"]
# Last: the legacy builder runs a container for every later instruction, each leaving an anonymous volume.
VOLUME /var/lib/zookeeper/data
