// Java client 3.9.1 as one principal against an authorizing broker: producer, consumer and
// Admin steps. Prints one JSON line {"s0":{...},"s1":{...}} with, per step, {"ok":true},
// {"topics":[...]}, {"records":N} or {"error":"<exception class>: <message>"}.
//
// usage: java -cp '.tools/jars/*' AuthzOps.java BOOTSTRAP [--prop k=v]... STEP...
//   produce|TOPIC|IDEMPOTENT     one record, enable.idempotence=IDEMPOTENT (true/false)
//   await-produce|TOPIC|MS       retry a plain produce until it succeeds or MS pass
//   consume|TOPIC|GROUP|N        subscribe (JoinGroup/SyncGroup), poll N records, commitSync
//   fetch|TOPIC|GROUP|N          assign partition 0 (no join), poll N records, commitSync
//   list                         Admin listTopics (names, sorted)
//   create|TOPIC|RF              Admin createTopics, 1 partition
//   create-on|TOPIC|IDS          Admin createTopics, 1 partition on brokers IDS (comma list)
//   delete|TOPIC                 Admin deleteTopics
//   configs|TOPIC                Admin describeConfigs on the topic
//   alter-config|TOPIC           Admin incrementalAlterConfigs (retention.ms) on the topic
//   groups                       Admin listConsumerGroups (ids, sorted)
//   group-offsets|GROUP          Admin listConsumerGroupOffsets ("topic-p=offset", sorted)
//   txn|TXID|TOPIC               transactional producer: initTransactions, one record, commit
//   delete-records|TOPIC|OFFSET  Admin deleteRecords before OFFSET on partition 0 ({"low":N})
//   create-partitions|TOPIC|N    Admin createPartitions, increase to N
import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.stream.*;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.*;

public class AuthzOps {
    static Properties base = new Properties();

    static String quote(String s) { return "\"" + s.replace("\\", "\\\\").replace("\"", "'") + "\""; }

    static String error(Throwable e) {
        Throwable t = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
        return "{\"error\":" + quote(t.getClass().getSimpleName() + ": " + t.getMessage()) + "}";
    }

    static Properties props(Map<String, String> extra) {
        Properties p = new Properties();
        p.putAll(base);
        p.putAll(extra);
        return p;
    }

    static void produce(String topic, boolean idempotent) throws Exception {
        Properties p = props(Map.of(
            ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, String.valueOf(idempotent),
            ProducerConfig.ACKS_CONFIG, idempotent ? "all" : "1",
            ProducerConfig.MAX_BLOCK_MS_CONFIG, "15000",
            ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "15000",
            ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000",
            ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName(),
            ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName()));
        try (KafkaProducer<String, String> pr = new KafkaProducer<>(p)) {
            pr.send(new ProducerRecord<>(topic, 0, "k", "v")).get();
        }
    }

    static void txn(String txid, String topic) throws Exception {
        Properties p = props(Map.of(
            ProducerConfig.TRANSACTIONAL_ID_CONFIG, txid,
            ProducerConfig.MAX_BLOCK_MS_CONFIG, "15000",
            ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "15000",
            ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000",
            ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName(),
            ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName()));
        try (KafkaProducer<String, String> pr = new KafkaProducer<>(p)) {
            pr.initTransactions();
            pr.beginTransaction();
            pr.send(new ProducerRecord<>(topic, 0, "k", "txn")).get();
            pr.commitTransaction();
        }
    }

    static int consume(String topic, String group, int n, boolean subscribe) throws Exception {
        Properties p = props(Map.of(
            ConsumerConfig.GROUP_ID_CONFIG, group,
            ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
            ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false",
            ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "15000",
            ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName(),
            ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName()));
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
            if (subscribe) c.subscribe(List.of(topic));
            else c.assign(List.of(new TopicPartition(topic, 0)));
            int got = 0;
            long deadline = System.currentTimeMillis() + 20000;
            while (got < n && System.currentTimeMillis() < deadline) {
                got += c.poll(Duration.ofMillis(200)).count();
            }
            c.commitSync();
            return got;
        }
    }

    public static void main(String[] args) throws Exception {
        base.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        List<String> steps = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            if (args[i].equals("--prop")) {
                String[] kv = args[++i].split("=", 2);
                base.put(kv[0], kv[1]);
            } else {
                steps.add(args[i]);
            }
        }
        Properties ap = props(Map.of(
            AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000",
            AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "15000"));
        StringBuilder out = new StringBuilder("{");
        try (Admin admin = Admin.create(ap)) {
            for (int i = 0; i < steps.size(); i++) {
                String[] f = steps.get(i).split("\\|", -1);
                String result = "{\"ok\":true}";
                try {
                    switch (f[0]) {
                        case "produce":
                            produce(f[1], Boolean.parseBoolean(f[2]));
                            break;
                        case "await-produce": {
                            long deadline = System.currentTimeMillis() + Long.parseLong(f[2]);
                            while (true) {
                                try {
                                    produce(f[1], false);
                                    break;
                                } catch (Exception e) {
                                    if (System.currentTimeMillis() > deadline) throw e;
                                    Thread.sleep(200);
                                }
                            }
                            break;
                        }
                        case "consume":
                        case "fetch":
                            result = "{\"records\":" + consume(f[1], f[2], Integer.parseInt(f[3]),
                                f[0].equals("consume")) + "}";
                            break;
                        case "list": {
                            Set<String> names = admin.listTopics().names().get();
                            result = "{\"topics\":[" + names.stream().sorted().map(AuthzOps::quote)
                                .collect(Collectors.joining(",")) + "]}";
                            break;
                        }
                        case "create":
                            admin.createTopics(List.of(new NewTopic(f[1], 1, Short.parseShort(f[2]))))
                                .all().get();
                            break;
                        case "create-on": {
                            List<Integer> ids = Arrays.stream(f[2].split(",")).map(Integer::valueOf)
                                .collect(Collectors.toList());
                            admin.createTopics(List.of(new NewTopic(f[1], Map.of(0, ids)))).all().get();
                            break;
                        }
                        case "delete":
                            admin.deleteTopics(List.of(f[1])).all().get();
                            break;
                        case "configs": {
                            ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, f[1]);
                            Config c = admin.describeConfigs(List.of(r)).all().get().get(r);
                            result = "{\"configs\":" + c.entries().size() + "}";
                            break;
                        }
                        case "alter-config": {
                            ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, f[1]);
                            AlterConfigOp op = new AlterConfigOp(
                                new ConfigEntry("retention.ms", "3600000"), AlterConfigOp.OpType.SET);
                            admin.incrementalAlterConfigs(Map.of(r, List.of(op))).all().get();
                            break;
                        }
                        case "groups": {
                            Collection<ConsumerGroupListing> gs = admin.listConsumerGroups().all().get();
                            result = "{\"groups\":[" + gs.stream().map(g -> g.groupId()).sorted()
                                .map(AuthzOps::quote).collect(Collectors.joining(",")) + "]}";
                            break;
                        }
                        case "group-offsets": {
                            Map<TopicPartition, OffsetAndMetadata> m =
                                admin.listConsumerGroupOffsets(f[1]).partitionsToOffsetAndMetadata().get();
                            result = "{\"offsets\":[" + m.entrySet().stream()
                                .map(e -> e.getKey() + "=" + e.getValue().offset()).sorted()
                                .map(AuthzOps::quote).collect(Collectors.joining(",")) + "]}";
                            break;
                        }
                        case "txn":
                            txn(f[1], f[2]);
                            break;
                        case "delete-records": {
                            TopicPartition tp = new TopicPartition(f[1], 0);
                            long low = admin.deleteRecords(Map.of(tp,
                                RecordsToDelete.beforeOffset(Long.parseLong(f[2]))))
                                .lowWatermarks().get(tp).get().lowWatermark();
                            result = "{\"low\":" + low + "}";
                            break;
                        }
                        case "create-partitions":
                            admin.createPartitions(Map.of(f[1], NewPartitions.increaseTo(Integer.parseInt(f[2]))))
                                .all().get();
                            break;
                        default:
                            throw new IllegalArgumentException("unknown step " + f[0]);
                    }
                } catch (Exception e) {
                    result = error(e);
                }
                out.append(i == 0 ? "" : ",").append("\"s").append(i).append("\":").append(result);
            }
        }
        System.out.println(out.append("}"));
    }
}
