// Java Admin client 3.9.1: log-dir moves and feature flags, one step per argument, one JSON line
// per step; the last line is a JSON object with every step's result keyed by step name.
//
// usage: java -cp '.tools/jars/*' LogDirsOps.java BOOTSTRAP TOPIC STEP...
// steps: alter:P:B:DIR (alterReplicaLogDirs of TOPIC-P on broker B to DIR; error or null),
//        replica:P:B (describeReplicaLogDirs: current dir, future dir, lags),
//        dirs:B (describeLogDirs of broker B: dir -> error and TOPIC's replicas),
//        features (describeFeatures: finalized, supported, epoch),
//        upgrade:NAME:LEVEL / downgrade:NAME:LEVEL (updateFeatures; error and message or null)
import java.util.*;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.errors.ApiException;

public class LogDirsOps {
    static String q(String s) {
        return s == null ? "null" : "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    static String err(Throwable t) {
        Throwable c = t instanceof ExecutionException && t.getCause() != null ? t.getCause() : t;
        return "{\"error\":" + q(c.getClass().getSimpleName()) + ",\"message\":" + q(c.getMessage()) + "}";
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1];
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        StringBuilder all = new StringBuilder();
        try (Admin admin = Admin.create(props)) {
            for (int i = 2; i < args.length; i++) {
                String step = args[i];
                String out;
                try {
                    out = run(admin, topic, step);
                } catch (Exception e) {
                    out = err(e);
                }
                System.out.println(step + " " + out);
                if (all.length() > 0) all.append(',');
                all.append(q(step)).append(':').append(out);
            }
        }
        System.out.println("{" + all + "}");
    }

    static String run(Admin admin, String topic, String step) throws Exception {
        String[] a = step.split(":", 4);
        switch (a[0]) {
            case "alter": {
                TopicPartitionReplica r = new TopicPartitionReplica(topic, Integer.parseInt(a[1]), Integer.parseInt(a[2]));
                try {
                    admin.alterReplicaLogDirs(Map.of(r, a[3])).all().get();
                    return "{\"error\":null}";
                } catch (ExecutionException e) {
                    return err(e);
                }
            }
            case "replica": {
                TopicPartitionReplica r = new TopicPartitionReplica(topic, Integer.parseInt(a[1]), Integer.parseInt(a[2]));
                DescribeReplicaLogDirsResult.ReplicaLogDirInfo i = admin.describeReplicaLogDirs(List.of(r)).all().get().get(r);
                return "{\"current\":" + q(i.getCurrentReplicaLogDir()) + ",\"current_lag\":" + i.getCurrentReplicaOffsetLag()
                    + ",\"future\":" + q(i.getFutureReplicaLogDir()) + ",\"future_lag\":" + i.getFutureReplicaOffsetLag() + "}";
            }
            case "dirs": {
                int b = Integer.parseInt(a[1]);
                Map<String, LogDirDescription> d = admin.describeLogDirs(List.of(b)).allDescriptions().get().get(b);
                StringBuilder o = new StringBuilder();
                for (Map.Entry<String, LogDirDescription> e : new TreeMap<>(d).entrySet()) {
                    if (o.length() > 0) o.append(',');
                    StringBuilder rs = new StringBuilder();
                    for (Map.Entry<TopicPartition, ReplicaInfo> r : e.getValue().replicaInfos().entrySet()) {
                        if (!r.getKey().topic().equals(topic)) continue;
                        if (rs.length() > 0) rs.append(',');
                        rs.append("{\"partition\":").append(r.getKey().partition())
                          .append(",\"future\":").append(r.getValue().isFuture())
                          .append(",\"size\":").append(r.getValue().size()).append('}');
                    }
                    ApiException ex = e.getValue().error();
                    o.append(q(e.getKey())).append(":{\"error\":").append(q(ex == null ? null : ex.getClass().getSimpleName()))
                     .append(",\"replicas\":[").append(rs).append("]}");
                }
                return "{" + o + "}";
            }
            case "features": {
                FeatureMetadata m = admin.describeFeatures().featureMetadata().get();
                StringBuilder f = new StringBuilder();
                for (Map.Entry<String, FinalizedVersionRange> e : new TreeMap<>(m.finalizedFeatures()).entrySet()) {
                    if (f.length() > 0) f.append(',');
                    f.append(q(e.getKey())).append(":[").append(e.getValue().minVersionLevel()).append(',').append(e.getValue().maxVersionLevel()).append(']');
                }
                StringBuilder s = new StringBuilder();
                for (Map.Entry<String, SupportedVersionRange> e : new TreeMap<>(m.supportedFeatures()).entrySet()) {
                    if (s.length() > 0) s.append(',');
                    s.append(q(e.getKey())).append(":[").append(e.getValue().minVersion()).append(',').append(e.getValue().maxVersion()).append(']');
                }
                return "{\"finalized\":{" + f + "},\"supported\":{" + s + "},\"epoch\":" + m.finalizedFeaturesEpoch().orElse(-1L) + "}";
            }
            case "upgrade":
            case "downgrade": {
                FeatureUpdate.UpgradeType t = a[0].equals("upgrade") ? FeatureUpdate.UpgradeType.UPGRADE : FeatureUpdate.UpgradeType.SAFE_DOWNGRADE;
                try {
                    admin.updateFeatures(Map.of(a[1], new FeatureUpdate(Short.parseShort(a[2]), t)), new UpdateFeaturesOptions()).all().get();
                    return "{\"error\":null}";
                } catch (ExecutionException e) {
                    return err(e);
                }
            }
            default:
                throw new IllegalArgumentException("unknown step " + step);
        }
    }
}
