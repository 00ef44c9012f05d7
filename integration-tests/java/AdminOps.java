// Java Admin client 3.9.1 operations against a cluster, one step per argument, one JSON line per step.
// The last line is a JSON object with every step's result keyed by step name.
//
// usage: java -cp '.tools/jars/*' AdminOps.java BOOTSTRAP TOPIC STEP...
// steps: create(3 partitions, RF=all brokers up to 3, retention.ms=3600000), describe, describe_configs,
//        alter_configs (retention.ms=7200000 via incrementalAlterConfigs), create_partitions(5), cluster,
//        produce(10 records to partition 0), list_offsets, delete_records(5), delete,
//        reassign:P:B1,B2,... (alterPartitionReassignments of partition P to those brokers),
//        list_reassignments (listPartitionReassignments of the topic's partitions),
//        elect_preferred:P (electLeaders PREFERRED for partition P; per-partition error or null),
//        loggers:B[:LOGGER] (describeConfigs BROKER_LOGGER of broker B), logger_set:B:LOGGER:LEVEL,
//        logger_delete:B:LOGGER (incrementalAlterConfigs on BROKER_LOGGER),
//        logger_legacy_alter:B (deprecated alterConfigs on BROKER_LOGGER, which Kafka refuses)
import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringSerializer;

public class AdminOps {
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
                    out = run(admin, bootstrap, topic, step);
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

    static String run(Admin admin, String bootstrap, String topic, String step) throws Exception {
        if (step.startsWith("reassign:")) {
            String[] parts = step.split(":");
            List<Integer> target = new ArrayList<>();
            for (String b : parts[2].split(",")) target.add(Integer.parseInt(b));
            TopicPartition tp = new TopicPartition(topic, Integer.parseInt(parts[1]));
            admin.alterPartitionReassignments(Map.of(tp, Optional.of(new NewPartitionReassignment(target)))).all().get();
            return "{\"ok\":true}";
        }
        if (step.startsWith("elect_preferred:")) {
            TopicPartition tp = new TopicPartition(topic, Integer.parseInt(step.split(":")[1]));
            Map<TopicPartition, Optional<Throwable>> r = admin.electLeaders(ElectionType.PREFERRED, Set.of(tp)).partitions().get();
            Optional<Throwable> e = r.get(tp);
            return "{\"error\":" + q(e == null ? "missing" : e.map(t -> t.getClass().getSimpleName()).orElse(null)) + "}";
        }
        if (step.startsWith("loggers:")) {
            // loggers:BROKER_ID[:LOGGER] -> every logger level of that broker (or one).
            String[] parts = step.split(":", 3);
            ConfigResource res = new ConfigResource(ConfigResource.Type.BROKER_LOGGER, parts[1]);
            Config c = admin.describeConfigs(List.of(res)).all().get().get(res);
            StringBuilder o = new StringBuilder();
            for (ConfigEntry e : c.entries()) {
                if (parts.length > 2 && !e.name().equals(parts[2])) continue;
                if (o.length() > 0) o.append(',');
                o.append(q(e.name())).append(":{\"level\":").append(q(e.value())).append(",\"source\":").append(q(e.source().name()))
                    .append(",\"read_only\":").append(e.isReadOnly()).append('}');
            }
            return "{" + o + "}";
        }
        if (step.startsWith("logger_set:") || step.startsWith("logger_delete:")) {
            // logger_set:BROKER_ID:LOGGER:LEVEL / logger_delete:BROKER_ID:LOGGER
            // (LOGGER may contain "::", so split on the first and last colons only.)
            boolean set = step.startsWith("logger_set:");
            String rest = step.substring(step.indexOf(':') + 1);
            String broker = rest.substring(0, rest.indexOf(':'));
            String logger = rest.substring(rest.indexOf(':') + 1);
            String level = null;
            if (set) {
                level = logger.substring(logger.lastIndexOf(':') + 1);
                logger = logger.substring(0, logger.lastIndexOf(':'));
            }
            ConfigResource res = new ConfigResource(ConfigResource.Type.BROKER_LOGGER, broker);
            AlterConfigOp op = new AlterConfigOp(new ConfigEntry(logger, level), set ? AlterConfigOp.OpType.SET : AlterConfigOp.OpType.DELETE);
            admin.incrementalAlterConfigs(Map.of(res, List.of(op))).all().get();
            return "{\"ok\":true}";
        }
        if (step.startsWith("logger_legacy_alter:")) {
            ConfigResource res = new ConfigResource(ConfigResource.Type.BROKER_LOGGER, step.split(":")[1]);
            @SuppressWarnings("deprecation")
            AlterConfigsResult r = admin.alterConfigs(Map.of(res, new Config(List.of(new ConfigEntry("root", "DEBUG")))));
            r.all().get();
            return "{\"ok\":true}";
        }
        switch (step) {
            case "create": {
                int brokers = admin.describeCluster().nodes().get().size();
                short rf = (short) Math.min(3, brokers);
                NewTopic nt = new NewTopic(topic, 3, rf).configs(Map.of("retention.ms", "3600000"));
                CreateTopicsResult r = admin.createTopics(List.of(nt));
                r.all().get();
                return "{\"topic_id\":" + q(r.topicId(topic).get().toString()) + ",\"partitions\":" + r.numPartitions(topic).get()
                    + ",\"replication_factor\":" + r.replicationFactor(topic).get() + "}";
            }
            case "describe": {
                TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
                StringBuilder ps = new StringBuilder();
                for (TopicPartitionInfo p : d.partitions()) {
                    if (ps.length() > 0) ps.append(',');
                    ps.append("{\"partition\":").append(p.partition()).append(",\"leader\":").append(p.leader() == null ? -1 : p.leader().id())
                        .append(",\"replicas\":").append(ids(p.replicas())).append(",\"isr\":").append(ids(p.isr())).append('}');
                }
                return "{\"topic_id\":" + q(d.topicId().toString()) + ",\"internal\":" + d.isInternal() + ",\"partitions\":[" + ps + "]}";
            }
            case "describe_configs": {
                ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
                Config c = admin.describeConfigs(List.of(res)).all().get().get(res);
                ConfigEntry ret = c.get("retention.ms"), seg = c.get("segment.bytes");
                return "{\"retention.ms\":" + q(ret == null ? null : ret.value()) + ",\"retention.ms.source\":" + q(ret == null ? null : ret.source().name())
                    + ",\"segment.bytes\":" + q(seg == null ? null : seg.value()) + ",\"segment.bytes.source\":" + q(seg == null ? null : seg.source().name())
                    + ",\"entries\":" + c.entries().size() + "}";
            }
            case "alter_configs": {
                ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
                admin.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET))))
                    .all().get();
                Config c = admin.describeConfigs(List.of(res)).all().get().get(res);
                return "{\"retention.ms\":" + q(c.get("retention.ms").value()) + "}";
            }
            case "create_partitions": {
                admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all().get();
                return "{\"ok\":true}";
            }
            case "cluster": {
                DescribeClusterResult r = admin.describeCluster();
                return "{\"cluster_id\":" + q(r.clusterId().get()) + ",\"controller\":" + r.controller().get().id() + ",\"nodes\":" + ids(r.nodes().get()) + "}";
            }
            case "produce": {
                Properties pp = new Properties();
                pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                try (Producer<String, String> p = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
                    RecordMetadata last = null;
                    for (int i = 0; i < 10; i++) last = p.send(new ProducerRecord<>(topic, 0, "k" + i, "v" + i)).get();
                    return "{\"last_offset\":" + last.offset() + "}";
                }
            }
            case "list_offsets": {
                TopicPartition tp = new TopicPartition(topic, 0);
                long e = admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).all().get().get(tp).offset();
                long l = admin.listOffsets(Map.of(tp, OffsetSpec.latest())).all().get().get(tp).offset();
                return "{\"earliest\":" + e + ",\"latest\":" + l + "}";
            }
            case "delete_records": {
                TopicPartition tp = new TopicPartition(topic, 0);
                DeleteRecordsResult r = admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(5)));
                long low = r.lowWatermarks().get(tp).get().lowWatermark();
                long e = admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).all().get().get(tp).offset();
                return "{\"low_watermark\":" + low + ",\"earliest\":" + e + "}";
            }
            case "delete": {
                admin.deleteTopics(List.of(topic)).all().get();
                return "{\"ok\":true}";
            }
            case "list": {
                Set<String> names = admin.listTopics().names().get();
                return "{\"contains\":" + names.contains(topic) + "}";
            }
            case "list_reassignments": {
                int n = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size();
                Set<TopicPartition> tps = new HashSet<>();
                for (int i = 0; i < n; i++) tps.add(new TopicPartition(topic, i));
                Map<TopicPartition, PartitionReassignment> m = admin.listPartitionReassignments(tps).reassignments().get();
                return "{\"ongoing\":" + m.size() + "}";
            }
            default:
                throw new IllegalArgumentException("unknown step " + step);
        }
    }

    static String ids(Collection<Node> nodes) {
        StringBuilder b = new StringBuilder("[");
        for (Node n : nodes) { if (b.length() > 1) b.append(','); b.append(n.id()); }
        return b.append(']').toString();
    }
}
